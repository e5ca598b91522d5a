import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import Foundation
import GRDB
import Logging
import NIOConcurrencyHelpers
import PostgresNIO
import Testing

@testable import CodeWorker

// Issue 12, defects 2 to 4 on the worker's side: a renewal that does not come back in time stops the
// pipeline, a cancellation beats a drain, and a forced shutdown is a release, not a failure.
@Suite("Worker reliability: renewal deadline, cancel over drain, forced shutdown")
struct WorkerReliabilityTests {
    @Test
    func aCancellationOverridesADrainButNotALostLease() {
        let control = PipelineControl()
        control.interrupt(.draining)
        control.interrupt(.cancelRequested)
        #expect(control.interruption == .cancelRequested, "a cancelled deployment is never released for another worker")
        control.interrupt(.draining)
        #expect(control.interruption == .cancelRequested)
        control.interrupt(.leaseLost)
        control.interrupt(.cancelRequested)
        #expect(control.interruption == .leaseLost)
    }

    @Test(arguments: TestBackend.available)
    func aRenewalThatMissesItsDeadlineStopsThePipeline(backend: TestBackend) async throws {
        let shortLease: @Sendable (inout WorkerSettings) -> Void = {
            $0.leaseDuration = .milliseconds(1500)
            $0.rollout = .simulated(step: .seconds(30))
        }
        try await withWorker(backend, configure: shortLease) { worker in
            let queued = try await worker.enqueue(replicas: 2)
            try await waitForEvent(worker, queued.id) { $0.step == "rollout" && $0.kind == .started }
            #expect(leasesLost(worker) == 0)
            // The database stalls: the deployment's row (PostgreSQL) or the whole file (SQLite) is locked,
            // so renewals hang instead of failing.
            try await holdingTheRow(worker, queued.id) {
                let stalled = ContinuousClock.now
                while leasesLost(worker) == 0 {
                    guard ContinuousClock.now - stalled < .seconds(3) else {
                        Issue.record("the pipeline kept running on a renewal that did not come back within a third of the lease")
                        return
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                // Renewal every 0.5 s, deadline 0.5 s, heartbeat tick 0.25 s: about 1.25 s at most, give or take a loaded machine.
                #expect(ContinuousClock.now - stalled < .seconds(2))
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func aForcedShutdownReleasesInsteadOfFailing(backend: TestBackend) async throws {
        try await withMigratedStore(backend) { _, location, store in
            let spec = try DeploymentSpec.validate(
                DeploymentRequest(service: "web", image: "ghcr.io/a/web:1", environment: "staging", replicas: 2)
            ).get()
            let queued = try await store.createDeployment(NewDeployment(spec: spec, createdBy: nil)).deployment
            // One attempt allowed, and a pipeline in a slow rollout.
            let claim = try #require(try await store.claimNext(worker: "forced", leaseDuration: .seconds(30), maxAttempts: 1))
            let settings = workerSettings(location) {
                $0.maxAttempts = 1
                $0.workerID = "forced"
            }
            let runtime = ServiceRuntime(
                name: "code-worker", settings: RuntimeSettings(host: "127.0.0.1", port: 0), logger: quietLogger())
            let pipeline = Pipeline(
                claim: claim, store: store, settings: settings, driver: SimulatedDriver(step: .seconds(60)),
                verifier: HealthVerifier(client: .shared, timeout: .seconds(1), interval: .milliseconds(50)),
                metrics: WorkerMetrics(factory: runtime.metrics.factory), logger: quietLogger(), control: PipelineControl(),
                step: NIOLockedValueBox("claim"))
            let running = Task { await pipeline.run() }
            let deadline = ContinuousClock.now + .seconds(20)
            while try await !store.events(deploymentID: queued.id, after: nil, limit: 100).items.contains(where: {
                $0.step == "rollout" && $0.kind == .started
            }) {
                guard ContinuousClock.now < deadline else { throw ProcessTimeout(command: "rollout start", timeout: .seconds(20)) }
                try await Task.sleep(for: .milliseconds(20))
            }
            // The service group gives up on a graceful shutdown and cancels the task.
            running.cancel()
            #expect(await running.value == .released)
            let released = try #require(try await store.deployment(id: queued.id))
            #expect(released.status == .queued, "a CancellationError is a release: the one allowed attempt is not used up")
            #expect(released.error == nil)
        }
    }
}

private func leasesLost(_ worker: WorkerTestContext) -> Int {
    let exposition = String(decoding: worker.runtime.metrics.exposition(), as: UTF8.self)
    let line = exposition.split(separator: "\n").first { $0.hasPrefix("code_worker_leases_lost_total ") }
    return line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
}

private func waitForEvent(
    _ worker: WorkerTestContext, _ id: String, timeout: Duration = .seconds(20), _ condition: @escaping (DeploymentEvent) -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !worker.events(id).contains(where: condition) {
        guard ContinuousClock.now < deadline else { throw ProcessTimeout(command: "waiting for an event of \(id)", timeout: timeout) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// Runs `body` while another connection holds a lock that the deployment's lease renewal waits for.
private func holdingTheRow(_ worker: WorkerTestContext, _ id: String, _ body: @escaping @Sendable () async throws -> Void) async throws {
    switch worker.location {
    case .sqlite(let path):
        // SQLite's single write lock, from another connection (as another process would hold it).
        var configuration = Configuration()
        configuration.allowsUnsafeTransactions = true
        configuration.busyMode = .timeout(5)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try await queue.writeWithoutTransaction { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        do {
            try await body()
        } catch {
            try await queue.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
            throw error
        }
        try await queue.writeWithoutTransaction { db in try db.execute(sql: "ROLLBACK") }
    case .postgres(let url):
        let client = PostgresClient(configuration: try .from(url: url, password: nil), backgroundLogger: quietLogger())
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.withConnection { connection in
                try await connection.query("BEGIN", logger: quietLogger()).drain()
                try await connection.query("SELECT seq FROM deployments WHERE id = \(id) FOR UPDATE", logger: quietLogger()).drain()
                do {
                    try await body()
                } catch {
                    try await connection.query("ROLLBACK", logger: quietLogger()).drain()
                    throw error
                }
                try await connection.query("ROLLBACK", logger: quietLogger()).drain()
            }
        }
    }
}

extension PostgresRowSequence {
    fileprivate func drain() async throws {
        for try await _ in self {}
    }
}
