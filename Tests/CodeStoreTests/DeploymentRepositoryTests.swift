import CodeDomain
import CodeStore
import CodeTestSupport
import Foundation
import NIOConcurrencyHelpers
import Testing

/// One suite for both backends: every test runs unchanged on SQLite and PostgreSQL.
@Suite("Deployment repository")
struct DeploymentRepositoryTests {
    @Test(arguments: TestBackend.available)
    func createdDeploymentIsQueuedAndReadable(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let created = try await store.createDeployment(Fixtures.newDeployment()).deployment
            #expect(created.status == .queued)
            #expect(created.attempt == 0)
            #expect(created.imageRef.registry == "ghcr.io")
            #expect(created.imageRef.tag == "1.2.3")
            #expect(created.labels == ["team": "core"])
            #expect(created.healthURL == "http://web.internal/health")
            let read = try #require(try await store.deployment(id: created.id))
            #expect(read == created)
            #expect(try await store.deployment(id: "dep_missing") == nil)
            let events = try await store.events(deploymentID: created.id, after: nil, limit: 10).items
            #expect(events.map(\.step) == ["queue"])
        }
    }

    @Test(arguments: TestBackend.available)
    func idempotencyKeyReplaysTheSameRequestAndRefusesAnother(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let first = try await store.createDeployment(Fixtures.newDeployment(idempotencyKey: "k1", requestHash: "h1"))
            guard case .created(let deployment) = first else {
                Issue.record("first request must create")
                return
            }
            let replay = try await store.createDeployment(Fixtures.newDeployment(idempotencyKey: "k1", requestHash: "h1"))
            #expect(replay == .replayed(deployment))
            #expect(
                try await store.events(deploymentID: deployment.id, after: nil, limit: 10).items.map(\.step) == ["queue"],
                "a replay writes nothing")
            await #expect(throws: StoreError.idempotencyMismatch(existingID: deployment.id)) {
                try await store.createDeployment(Fixtures.newDeployment(idempotencyKey: "k1", requestHash: "h2"))
            }
            // Keys are per API key: another key may use the same idempotency key.
            let other = try await store.createDeployment(Fixtures.newDeployment(by: "key_other", idempotencyKey: "k1", requestHash: "h2"))
            #expect(other.deployment.id != deployment.id)
            #expect(try await store.deployments(matching: DeploymentFilter(limit: 100)).items.count == 2)
        }
    }

    /// Concurrent creates share transactions on SQLite (group commit) and race for the unique index on
    /// PostgreSQL: either way one request with a key creates, and every other one replays it.
    @Test(arguments: TestBackend.available)
    func concurrentCreatesWithOneIdempotencyKeyCreateOneDeployment(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let outcomes = try await withThrowingTaskGroup(of: CreateOutcome.self) { group in
                for _ in 0..<16 {
                    group.addTask { try await store.createDeployment(Fixtures.newDeployment(idempotencyKey: "k1", requestHash: "h1")) }
                }
                // Creates without a key, queued beside them, are each written.
                for _ in 0..<16 { group.addTask { try await store.createDeployment(Fixtures.newDeployment()) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let keyed = Set(outcomes.map(\.deployment.id)).count - 16
            #expect(keyed == 1, "the 16 keyed creates name one deployment")
            #expect(outcomes.filter { if case .created = $0 { true } else { false } }.count == 17)
            let stored = try await store.deployments(matching: DeploymentFilter(limit: 100)).items
            #expect(stored.count == 17)
            for deployment in stored {
                #expect(try await store.events(deploymentID: deployment.id, after: nil, limit: 10).items.map(\.step) == ["queue"])
            }
        }
    }

    /// A create carries its request's audit row into its own transaction; a replay creates nothing and
    /// writes no row (the API audits the replay itself).
    @Test(arguments: TestBackend.available)
    func aCreateWritesItsAuditRowAndAReplayWritesNone(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            func audited(_ new: NewDeployment) -> NewDeployment {
                var new = new
                new.audit = NewAuditEntry(
                    at: Date(), keyID: "key_test", action: "deployment.create", target: new.id, outcome: "succeeded", status: 201,
                    requestID: "req-\(new.id)", method: "POST", path: "/v1/deployments", client: "tests")
                return new
            }
            let created = try await store.createDeployment(audited(Fixtures.newDeployment(idempotencyKey: "k1", requestHash: "h1")))
            let replay = try await store.createDeployment(audited(Fixtures.newDeployment(idempotencyKey: "k1", requestHash: "h1")))
            #expect(replay == .replayed(created.deployment))
            let rows = try await store.auditEntries(limit: 10, before: nil).items
            #expect(rows.count == 1, "the replay wrote no audit row")
            let row = try #require(rows.first)
            #expect(row.target == created.deployment.id)
            #expect(row.requestID == "req-\(created.deployment.id)")
            #expect(
                [row.action, row.outcome, row.method, row.path, row.client] == [
                    "deployment.create", "succeeded", "POST", "/v1/deployments", "tests",
                ])
            #expect(row.status == 201)
            #expect(row.keyID == "key_test")
        }
    }

    @Test(arguments: TestBackend.available)
    func listIsNewestFirstFilteredAndPaginated(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            var ids: [String] = []
            for index in 0..<7 {
                let environment: DeploymentEnvironment = index.isMultiple(of: 2) ? .staging : .development
                let spec = Fixtures.spec(service: index < 4 ? "web" : "api", environment: environment)
                ids.append(try await store.createDeployment(Fixtures.newDeployment(spec)).deployment.id)
            }
            let first = try await store.deployments(matching: DeploymentFilter(limit: 3))
            #expect(first.items.map(\.id) == Array(ids.reversed().prefix(3)))
            let second = try await store.deployments(matching: DeploymentFilter(limit: 3, before: first.next))
            #expect(second.items.map(\.id) == Array(ids.reversed().dropFirst(3).prefix(3)))
            let third = try await store.deployments(matching: DeploymentFilter(limit: 3, before: second.next))
            #expect(third.items.map(\.id) == [ids[0]])
            #expect(third.next == nil)

            let web = try await store.deployments(matching: DeploymentFilter(service: "web", limit: 100)).items
            #expect(web.map(\.id) == Array(ids.prefix(4).reversed()))
            let staging = try await store.deployments(matching: DeploymentFilter(environment: .staging, limit: 100)).items
            #expect(Set(staging.map(\.id)) == Set([ids[0], ids[2], ids[4], ids[6]]))
            _ = try await store.cancelDeployment(id: ids[1], by: nil, at: Date())
            let cancelled = try await store.deployments(matching: DeploymentFilter(status: .cancelled, limit: 100)).items
            #expect(cancelled.map(\.id) == [ids[1]])
        }
    }

    @Test(arguments: TestBackend.available)
    func paginationIsStableUnderConcurrentInserts(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            var existing: Set<String> = []
            for _ in 0..<40 {
                existing.insert(try await store.createDeployment(Fixtures.newDeployment()).deployment.id)
            }
            let seen = NIOLockedValueBox<[String]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for _ in 0..<30 { _ = try await store.createDeployment(Fixtures.newDeployment()) }
                }
                group.addTask {
                    var cursor: Int64?
                    repeat {
                        let page = try await store.deployments(matching: DeploymentFilter(limit: 7, before: cursor))
                        seen.withLockedValue { $0.append(contentsOf: page.items.map(\.id)) }
                        cursor = page.next
                    } while cursor != nil
                }
                try await group.waitForAll()
            }
            let pages = seen.withLockedValue { $0 }
            #expect(pages.count == Set(pages).count, "no deployment appears twice")
            #expect(existing.isSubset(of: Set(pages)), "every deployment that existed when paging began is seen")
        }
    }

    @Test(arguments: TestBackend.available)
    func cancellationDependsOnStatus(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let queued = try await store.createDeployment(Fixtures.newDeployment()).deployment
            guard case .cancelled(let cancelled) = try await store.cancelDeployment(id: queued.id, by: "key_a", at: Date()) else {
                Issue.record("a queued deployment is cancelled at once")
                return
            }
            #expect(cancelled.status == .cancelled)
            #expect(cancelled.finishedAt != nil)
            await #expect(throws: StoreError.conflict("deployment \(queued.id) already ended with status cancelled")) {
                try await store.cancelDeployment(id: queued.id, by: "key_a", at: Date())
            }

            let running = try await store.createDeployment(Fixtures.newDeployment()).deployment
            let claim = try #require(try await store.claimNext(worker: "w1", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(claim.deployment.id == running.id)
            guard case .cancelRequested(let requested) = try await store.cancelDeployment(id: running.id, by: "key_a", at: Date()) else {
                Issue.record("a running deployment gets a cancellation request")
                return
            }
            #expect(requested.status == .running)
            #expect(requested.cancelRequested)
            #expect(try await store.renewLease(claim, leaseDuration: .seconds(30)) == .held(cancelRequested: true))
            let request = try #require(try await store.events(deploymentID: running.id, after: nil, limit: 10).items.last)
            #expect(request.step == "cancel")
            #expect(request.attempt == claim.attempt, "the request is recorded in the running attempt")
            #expect(request.outcome == nil, "the worker records the outcome when it stops")

            await #expect(throws: StoreError.notFound) { try await store.cancelDeployment(id: "dep_nope", by: nil, at: Date()) }
            let steps = try await store.events(deploymentID: queued.id, after: nil, limit: 10).items.map(\.step)
            #expect(steps == ["queue", "cancel"])
        }
    }

    @Test(arguments: TestBackend.available)
    func eventsAreOrderedAndResumeAfterACursor(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let claim = try #require(try await store.claimNext(worker: "w1", leaseDuration: .seconds(30), maxAttempts: 3))
            for index in 1...5 {
                #expect(try await store.appendEvent(claim, NewEvent(step: "step\(index)", kind: .info, message: "event \(index)")))
            }
            let all = try await store.events(deploymentID: claim.deployment.id, after: nil, limit: 100).items
            #expect(all.map(\.step) == ["queue", "step1", "step2", "step3", "step4", "step5"])
            #expect(all.map(\.sequence) == all.map(\.sequence).sorted())
            let page = try await store.events(deploymentID: claim.deployment.id, after: all[2].sequence, limit: 2)
            #expect(page.items.map(\.step) == ["step3", "step4"])
            #expect(page.next == all[4].sequence)
            let rest = try await store.events(deploymentID: claim.deployment.id, after: page.next, limit: 2)
            #expect(rest.items.map(\.step) == ["step5"])
            #expect(rest.next == nil)
        }
    }

    @Test(arguments: TestBackend.available)
    func migrationsAreIdempotentAndSafeInParallel(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            try await store.migrate()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            try await store.ping()
        }
    }
}
