import CodeDomain
import CodeStore
import CodeTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

@Suite("Work queue: leases and guarded updates")
struct WorkQueueTests {
    @Test(arguments: TestBackend.available)
    func claimsOldestFirstAndOnlyOnce(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let first = try await store.createDeployment(Fixtures.newDeployment()).deployment
            let second = try await store.createDeployment(Fixtures.newDeployment()).deployment
            #expect(try await store.queueDepth() == 2)
            let claimA = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3))
            let claimB = try #require(try await store.claimNext(worker: "b", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(claimA.deployment.id == first.id)
            #expect(claimB.deployment.id == second.id)
            #expect(claimA.deployment.status == .running)
            #expect(claimA.attempt == 1)
            #expect(claimA.deployment.leaseOwner == "a")
            #expect(try await store.claimNext(worker: "c", leaseDuration: .seconds(30), maxAttempts: 3) == nil)
            #expect(try await store.queueDepth() == 0)
        }
    }

    /// The pipeline writes the events it recorded together, with the manifests, a step's `started` or the
    /// end: one write keeps their order and every value (a missing outcome or duration stays missing, a
    /// duration of 0 stays 0), lands all of them only while the lease is held, and the end's time is its
    /// final event's.
    @Test(arguments: TestBackend.available)
    func eventsWrittenTogetherKeepOrderAndValuesAndNeedTheLease(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3))
            let base = Date(timeIntervalSince1970: 1_900_000_000)
            let recorded = [
                NewEvent(at: base, step: "claim", kind: .info, message: "claimed"),
                NewEvent(at: base.addingTimeInterval(0.001), step: "validate", kind: .started, message: "validate started"),
                NewEvent(
                    at: base.addingTimeInterval(0.002), step: "validate", kind: .finished, outcome: .succeeded, durationMs: 0,
                    message: "valid"),
                NewEvent(at: base.addingTimeInterval(0.002), step: "render", kind: .started, message: "render ' started"),
            ]
            #expect(try await store.saveManifests(claim, compose: "services: {}", kubernetes: "kind: List", at: base, events: recorded))
            let rolloutStarted = [
                NewEvent(
                    at: base.addingTimeInterval(0.003), step: "render", kind: .finished, outcome: .succeeded, durationMs: 1,
                    message: "rendered"),
                NewEvent(at: base.addingTimeInterval(0.004), step: "rollout", kind: .started, message: "rollout started"),
            ]
            #expect(try await store.appendEvents(claim, rolloutStarted))
            let end = [
                NewEvent(
                    at: base.addingTimeInterval(0.010), step: "verify", kind: .finished, outcome: .skipped, durationMs: 7, message: "none"),
                NewEvent(at: base.addingTimeInterval(0.011), step: "finish", kind: .finished, outcome: .succeeded, message: "done"),
            ]
            #expect(try await store.finish(claim, status: .succeeded, error: nil, events: end))

            let written = try await store.events(deploymentID: claim.deployment.id, after: nil, limit: 100).items.dropFirst()  // "queue"
            let all = recorded + rolloutStarted + end
            #expect(written.map(\.step) == ["claim", "validate", "validate", "render", "render", "rollout", "verify", "finish"])
            // Times are stored in milliseconds.
            func milliseconds(_ date: Date?) -> Int64? { date.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } }
            #expect(written.map { milliseconds($0.at) } == all.map { milliseconds($0.at) })
            #expect(written.map(\.kind) == all.map(\.kind))
            #expect(written.map(\.outcome) == [nil, nil, .succeeded, nil, .succeeded, nil, .skipped, .succeeded])
            #expect(written.map(\.durationMs) == [nil, nil, 0, nil, 1, nil, 7, nil])
            #expect(written.map(\.message) == all.map(\.message))
            let manifests = try #require(try await store.manifests(deploymentID: claim.deployment.id))
            #expect(manifests.compose == "services: {}")
            #expect(manifests.kubernetes == "kind: List")
            #expect(written.allSatisfy { $0.attempt == claim.attempt && $0.workerID == "a" })
            let finished = try #require(try await store.deployment(id: claim.deployment.id))
            #expect(finished.status == .succeeded)
            #expect(milliseconds(finished.finishedAt) == milliseconds(end.last?.at))

            // Once the lease is gone (here: the deployment ended), none of a batch lands, nor a second end.
            #expect(try await !store.appendEvents(claim, recorded))
            #expect(try await !store.saveManifests(claim, compose: "late", kubernetes: "late", at: Date(), events: recorded))
            #expect(try await store.manifests(deploymentID: claim.deployment.id)?.compose == "services: {}")
            #expect(try await !store.finish(claim, status: .failed, error: "twice", events: end))
            #expect(try await !store.release(claim, events: recorded, afterFailure: true))
            #expect(try await store.events(deploymentID: claim.deployment.id, after: nil, limit: 100).items.count == written.count + 1)
        }
    }

    /// A release carries the events recorded before the interruption, in order, before its own.
    @Test(arguments: TestBackend.available)
    func aReleaseWritesTheRecordedEventsWithItsOwn(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3))
            let events = [
                NewEvent(step: "rollout", kind: .finished, outcome: .succeeded, durationMs: 3, message: "rolled out"),
                NewEvent(step: "release", kind: .info, message: "worker a is shutting down"),
            ]
            #expect(try await store.release(claim, events: events, afterFailure: false))
            let written = try await store.events(deploymentID: claim.deployment.id, after: nil, limit: 100).items
            #expect(written.map(\.step) == ["queue", "rollout", "release"])
            #expect(written.last?.message == "worker a is shutting down")
            let released = try #require(try await store.deployment(id: claim.deployment.id))
            #expect(released.status == .queued)
        }
    }

    @Test(arguments: TestBackend.available)
    func queueStatusReportsTheDepthAndHowLongTheOldestHasWaited(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.queueStatus() == QueueStatus(depth: 0, oldestAge: nil))
            _ = try await store.createDeployment(Fixtures.newDeployment(at: Date().addingTimeInterval(-90)))
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let status = try await store.queueStatus()
            #expect(status.depth == 2)
            let waited = try #require(status.oldestAge)
            #expect(waited >= .seconds(89) && waited < .seconds(120), "by the database's clock: \(waited)")
            _ = try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3)
            let afterClaim = try #require(try await store.queueStatus().oldestAge)
            #expect(afterClaim < .seconds(30), "the oldest left is the one created now")
        }
    }

    @Test(arguments: TestBackend.available)
    func aClaimCarriesTheTraceContextOfTheRequestThatCreatedIt(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            var traced = Fixtures.newDeployment()
            traced.traceParent = traceParent
            _ = try await store.createDeployment(traced)
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let first = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3))
            let second = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(first.traceParent == traceParent)
            #expect(second.traceParent == nil, "tracing was off when it was created")
        }
    }

    @Test(arguments: TestBackend.available)
    func concurrentClaimersNeverShareADeployment(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            for _ in 0..<30 { _ = try await store.createDeployment(Fixtures.newDeployment()) }
            let claimed = NIOLockedValueBox<[String]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<6 {
                    group.addTask {
                        while let claim = try await store.claimNext(
                            worker: "w\(worker)", leaseDuration: .seconds(30), maxAttempts: 3)
                        {
                            claimed.withLockedValue { $0.append(claim.deployment.id) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let ids = claimed.withLockedValue { $0 }
            #expect(ids.count == 30)
            #expect(Set(ids).count == 30)
        }
    }

    @Test(arguments: TestBackend.available)
    func onlyTheLeaseHolderMayFinish(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let original = try #require(try await store.claimNext(worker: "a", leaseDuration: .milliseconds(300), maxAttempts: 3))
            // Saved while the lease is held: the takeover's manifests below replace these (the conflict path).
            #expect(try await store.saveManifests(original, compose: "attempt 1", kubernetes: "attempt 1", at: Date()))
            // The lease expires; another worker takes over with attempt 2.
            try await Task.sleep(for: .milliseconds(700))
            let later = Date()
            let takeover = try #require(try await store.claimNext(worker: "b", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(takeover.deployment.id == original.deployment.id)
            #expect(takeover.attempt == 2)

            // The first worker has lost its lease: none of its changes land.
            #expect(try await store.renewLease(original, leaseDuration: .seconds(30)) == .lost)
            #expect(try await !store.appendEvent(original, NewEvent(step: "rollout", kind: .info, message: "late")))
            #expect(try await !store.saveManifests(original, compose: "x", kubernetes: "y", at: later))
            #expect(
                try await !store.finish(
                    original, status: .failed, error: "late",
                    event: NewEvent(step: "finish", kind: .finished, outcome: .failed, message: "late")))
            #expect(try await !store.release(original, event: NewEvent(step: "release", kind: .info, message: "late")))

            #expect(try await store.saveManifests(takeover, compose: "compose: yes", kubernetes: "kind: Deployment", at: later))
            #expect(
                try await store.finish(
                    takeover, status: .succeeded, error: nil,
                    event: NewEvent(at: later, step: "finish", kind: .finished, outcome: .succeeded, message: "done")))
            #expect(
                try await !store.finish(
                    takeover, status: .failed, error: "twice",
                    event: NewEvent(step: "finish", kind: .finished, outcome: .failed, message: "twice")), "a deployment ends once")

            let final = try #require(try await store.deployment(id: original.deployment.id))
            #expect(final.status == .succeeded)
            #expect(final.attempt == 2)
            #expect(final.leaseOwner == nil)
            #expect(final.error == nil)
            let manifests = try #require(try await store.manifests(deploymentID: final.id))
            #expect(manifests.attempt == 2)
            #expect(manifests.compose == "compose: yes")
            #expect(manifests.kubernetes == "kind: Deployment")
            let events = try await store.events(deploymentID: final.id, after: nil, limit: 100).items
            #expect(!events.contains { $0.message == "late" })
            #expect(events.filter { $0.kind == .finished }.count == 1)
        }
    }

    @Test(arguments: TestBackend.available)
    func releasedDeploymentIsClaimableAtOnce(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(300), maxAttempts: 1))
            #expect(try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "shutting down")))
            let again = try #require(try await store.claimNext(worker: "b", leaseDuration: .seconds(300), maxAttempts: 1))
            #expect(again.deployment.id == claim.deployment.id)
            #expect(again.attempt == 2, "the attempt count tells the takeover, and a release is not held against max attempts")
            #expect(again.releases == 1)
            #expect(again.failures == 0)
            #expect(
                try await store.deployments(matching: DeploymentFilter(status: .running, limit: 10)).items.map(\.id) == [
                    claim.deployment.id
                ])
        }
    }

    @Test(arguments: TestBackend.available)
    func concurrentHousekeepingFailsEachExhaustedDeploymentOnce(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            for _ in 0..<3 { _ = try await store.createDeployment(Fixtures.newDeployment()) }
            var owners: [String: String] = [:]
            for worker in 0..<3 {
                let claim = try #require(try await store.claimNext(worker: "w\(worker)", leaseDuration: .seconds(30), maxAttempts: 1))
                owners[claim.deployment.id] = claim.owner
                // Its one allowed attempt failed: housekeeping ends it.
                #expect(try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "error"), afterFailure: true))
            }
            // Every worker does housekeeping, so several may find the same exhausted deployments at once.
            let failed = NIOLockedValueBox<[String]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let ids = try await store.failExhausted(maxAttempts: 1)
                        failed.withLockedValue { $0.append(contentsOf: ids) }
                    }
                }
                try await group.waitForAll()
            }
            let ids = failed.withLockedValue { $0 }
            #expect(ids.sorted() == owners.keys.sorted(), "each exhausted deployment is failed once")
            for (id, owner) in owners {
                let events = try await store.events(deploymentID: id, after: nil, limit: 10).items
                #expect(events.map(\.step) == ["queue", "release", "lease"])
                let final = try #require(events.last)
                #expect(final.kind == .finished)
                #expect(final.outcome == .failed)
                #expect(final.attempt == 1)
                #expect(events[1].workerID == owner)
                let deployment = try #require(try await store.deployment(id: id))
                #expect(deployment.status == .failed)
                #expect(deployment.leaseOwner == nil)
                #expect(deployment.finishedAt != nil)
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func finishNeedsAFinalStatus(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3))
            await #expect(throws: StoreError.invalidArgument("finish needs a final status, not running")) {
                try await store.finish(
                    claim, status: .running, error: nil, event: NewEvent(step: "finish", kind: .finished, message: "not final"))
            }
            let unchanged = try #require(try await store.deployment(id: claim.deployment.id))
            #expect(unchanged.status == .running)
            #expect(unchanged.leaseOwner == "a")
        }
    }
}
