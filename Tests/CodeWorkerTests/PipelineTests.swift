import CodeDomain
import CodeRuntime
import CodeStore
import CodeTestSupport
import CodeWorker
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing

@Suite("Worker pipeline")
struct PipelineTests {
    @Test(arguments: TestBackend.available)
    func deploymentRunsEveryStepAndTellsTheStory(backend: TestBackend) async throws {
        try await withWorker(backend) { worker in
            let queued = try await worker.enqueue(replicas: 3)
            let finished = try await worker.waitUntilFinished(queued.id)
            #expect(finished.status == .succeeded)
            #expect(finished.attempt == 1)
            #expect(finished.error == nil)
            #expect(finished.leaseOwner == nil)
            let events = try await worker.events(queued.id)
            #expect(
                events.map { "\($0.step):\($0.kind.rawValue)" } == [
                    "queue:info", "claim:info",
                    "validate:started", "validate:finished", "render:started", "render:finished",
                    "rollout:started", "rollout:info", "rollout:info", "rollout:info", "rollout:finished",
                    "verify:finished", "finish:finished",
                ])
            #expect(
                events.filter { $0.kind == .finished && $0.step != "verify" && $0.step != "finish" }.allSatisfy {
                    $0.outcome == .succeeded && $0.durationMs != nil
                })
            #expect(events.first { $0.step == "verify" }?.outcome == .skipped)
            #expect(events.dropFirst().allSatisfy { $0.workerID != nil && $0.attempt == 1 })
            let manifests = try #require(try await worker.store.manifests(deploymentID: queued.id))
            #expect(manifests.kubernetes.contains("readOnlyRootFilesystem: true"))

            let status = try await worker.client.call(.get, "/v1/worker", key: nil)
            #expect(status.status == .unauthorized)
            let metrics = try await worker.metrics(containing: #"code_worker_finished_total{outcome="succeeded"} 1"#)
            #expect(metrics.contains(#"code_worker_claims_total{attempt="first"} 1"#))
            // Exported at 0 before anything happened, so the alerts' increase() sees the first one.
            #expect(metrics.contains(#"code_worker_claims_total{attempt="retry"} 0"#))
            #expect(metrics.contains("code_worker_failed_exhausted_total 0"))
            #expect(metrics.contains("code_worker_leases_lost_total 0"))
            #expect(metrics.contains(#"code_worker_finished_total{outcome="succeeded"} 1"#))
            #expect(metrics.contains(#"code_worker_step_duration_seconds_count{step="rollout",outcome="succeeded"} 1"#))
        }
    }

    @Test(arguments: TestBackend.available)
    func workerStatusNeedsAnOperatorKey(backend: TestBackend) async throws {
        try await withWorker(backend) { worker in
            var keys: [Role: String] = [:]
            for role in Role.allCases {
                let secret = APIKeySecret.generate()
                _ = try await worker.store.createKey(
                    NewAPIKey(
                        name: role.rawValue, role: role, prefix: APIKeySecret.prefix(of: secret), secretHash: APIKeySecret.hash(secret),
                        createdBy: nil))
                keys[role] = secret
            }
            #expect(try await worker.client.call(.get, "/v1/worker", key: nil).status == .unauthorized)
            #expect(try await worker.client.call(.get, "/v1/worker", key: keys[.viewer]).status == .forbidden)
            let response = try await worker.client.call(.get, "/v1/worker", key: keys[.operator])
            #expect(response.status == .ok)
            let status = try CodeJSON.decoder.decode(WorkerStatus.self, from: Data(buffer: response.body))
            #expect(status.concurrency == 4)
            #expect(status.driver == "simulated")
            #expect(try await worker.client.call(.get, "/v1/worker", key: keys[.admin]).status == .ok)
            let ready = try await worker.client.call(.get, "/health/ready", key: nil)
            #expect(ready.status == .ok)
            #expect(String(buffer: ready.body).contains("claim-loop"))
        }
    }

    @Test(arguments: TestBackend.available)
    func cancellationInterruptsARunningRollout(backend: TestBackend) async throws {
        let slowRollout: @Sendable (inout WorkerSettings) -> Void = { $0.rollout = .simulated(step: .seconds(30)) }
        try await withWorker(backend, configure: slowRollout) { worker in
            let queued = try await worker.enqueue(replicas: 2)
            // Wait until the rollout step has begun, then ask to cancel.
            let deadline = ContinuousClock.now + .seconds(20)
            while try await !worker.events(queued.id).contains(where: { $0.step == "rollout" && $0.kind == .started }) {
                guard ContinuousClock.now < deadline else { throw ProcessTimeout(command: "rollout start", timeout: .seconds(20)) }
                try await Task.sleep(for: .milliseconds(20))
            }
            let requestedAt = ContinuousClock.now
            _ = try await worker.store.cancelDeployment(id: queued.id, by: "key_test", at: Date())
            let finished = try await worker.waitUntilFinished(queued.id, timeout: .seconds(10))
            #expect(ContinuousClock.now - requestedAt < .seconds(5), "a 30 s wait is interrupted")
            #expect(finished.status == .cancelled)
            let events = try await worker.events(queued.id)
            #expect(events.contains { $0.step == "rollout" && $0.kind == .finished && $0.outcome == .cancelled })
            #expect(events.last?.step == "finish")
            #expect(events.last?.outcome == .cancelled)
        }
    }

    @Test(arguments: TestBackend.available)
    func workerAppliesThePolicyAgain(backend: TestBackend) async throws {
        let internalRegistryOnly: @Sendable (inout WorkerSettings) -> Void = {
            $0.policy = DeploymentPolicy(allowedRegistries: ["registry.internal"])
        }
        try await withWorker(backend, configure: internalRegistryOnly) { worker in
            let queued = try await worker.enqueue()
            let finished = try await worker.waitUntilFinished(queued.id)
            #expect(finished.status == .failed)
            #expect(finished.error?.contains("registry-allowlist") == true)
            #expect(try await worker.store.manifests(deploymentID: queued.id) == nil, "nothing is rendered for a refused deployment")
        }
    }

    @Test(arguments: TestBackend.available)
    func verifyPollsHealthURLUntilItAnswers(backend: TestBackend) async throws {
        let healthy = NIOLockedValueBox(0)
        let router = Router()
        router.get("/healthz") { _, _ -> Response in
            let calls = healthy.withLockedValue { value -> Int in
                value += 1
                return value
            }
            return Response(status: calls < 3 ? .serviceUnavailable : .ok)
        }
        let target = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), onServerRunning: { _ in })
        try await target.test(.live) { client in
            let url = "http://127.0.0.1:\(client.port!)/healthz"
            try await withWorker(backend) { worker in
                let good = try await worker.enqueue(healthURL: url)
                let finished = try await worker.waitUntilFinished(good.id)
                #expect(finished.status == .succeeded)
                #expect(healthy.withLockedValue { $0 } == 3)
                let message = try await worker.events(good.id).first { $0.step == "verify" && $0.kind == .info }?.message
                #expect(message?.contains("after 3 poll(s)") == true)

                let unreachable = try await worker.enqueue(healthURL: "http://127.0.0.1:\(freePort())/healthz")
                let failed = try await worker.waitUntilFinished(unreachable.id)
                #expect(failed.status == .failed)
                #expect(failed.error?.contains("did not answer 2xx within") == true)
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func shutdownReleasesInFlightDeploymentsForAnotherWorker(backend: TestBackend) async throws {
        try await withMigratedStore(backend) { _, location, store in
            let spec = try DeploymentSpec.validate(
                DeploymentRequest(service: "web", image: "ghcr.io/a/web:1", environment: "staging", replicas: 2)
            ).get()
            let queued = try await store.createDeployment(NewDeployment(spec: spec, createdBy: nil)).deployment

            // The first worker is slow; it is stopped in the middle of the rollout.
            let runtime = ServiceRuntime(
                name: "code-worker", settings: RuntimeSettings(host: "127.0.0.1", port: freePort(), shutdownTimeout: .seconds(10)),
                logger: quietLogger())
            let slow = try await buildApplication(
                settings: workerSettings(location) {
                    $0.rollout = .simulated(step: .seconds(60))
                    $0.workerID = "first"
                }, runtime: runtime)
            let group = runtime.makeServiceGroup(slow)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                let deadline = ContinuousClock.now + .seconds(20)
                while try await store.events(deploymentID: queued.id, after: nil, limit: 100).items.contains(where: {
                    $0.step == "rollout"
                }) == false {
                    guard ContinuousClock.now < deadline else { throw ProcessTimeout(command: "rollout start", timeout: .seconds(20)) }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let stopping = ContinuousClock.now
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                #expect(ContinuousClock.now - stopping < .seconds(5), "the 60 s wait does not hold up shutdown")
            }
            let released = try #require(try await store.deployment(id: queued.id))
            #expect(released.status == .queued)
            #expect(released.leaseOwner == nil)

            // Another worker takes it at once and finishes it.
            let second = ServiceRuntime(
                name: "code-worker", settings: RuntimeSettings(host: "127.0.0.1", port: 0), logger: quietLogger())
            let fast = try await buildApplication(settings: workerSettings(location) { $0.workerID = "second" }, runtime: second)
            try await fast.test(.router) { _ in
                let deadline = ContinuousClock.now + .seconds(20)
                while try await store.deployment(id: queued.id)?.status.isTerminal != true {
                    guard ContinuousClock.now < deadline else { throw ProcessTimeout(command: "takeover", timeout: .seconds(20)) }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let finished = try #require(try await store.deployment(id: queued.id))
            #expect(finished.status == .succeeded)
            let events = try await store.events(deploymentID: queued.id, after: nil, limit: 100).items
            // Each release by the first worker was one attempt; the second worker's was the last. (A claim
            // already under way when the drain began is released at once: then the first released twice.)
            let releasesByFirst = events.filter { $0.step == "release" && $0.workerID == "first" }.count
            #expect(releasesByFirst >= 1)
            #expect(finished.attempt == releasesByFirst + 1)
            #expect(events.contains { $0.step == "rollout" && $0.outcome == .skipped && $0.workerID == "first" })
            #expect(events.filter { $0.step == "finish" }.map(\.workerID) == ["second"])
        }
    }
}
