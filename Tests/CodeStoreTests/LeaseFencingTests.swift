import CodeDomain
import CodeTestSupport
import Foundation
import GRDB
import Logging
import PostgresNIO
import Testing

@testable import CodeStore

// Issue 12, defects 2 to 4 and 12: a pipeline whose lease was taken over changes nothing, even under the
// same worker id; lease times come from the database's clock; a cancellation is final; releases do not
// use up attempts; a database newer than the binary stops it with a clear error.
@Suite("Work queue: fencing, the database's clock, final cancellation, releases")
struct LeaseFencingTests {
    /// A lease short enough for a test to let it expire.
    static let shortLease: Duration = .milliseconds(300)
    static let afterShortLease: Duration = .milliseconds(700)

    @Test(arguments: TestBackend.available)
    func aReclaimBySameWorkerFencesTheOldPipeline(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            let old = try #require(try await store.claimNext(worker: "w", leaseDuration: Self.shortLease, maxAttempts: 3))
            // A slow database: the lease expires, and the same process claims the deployment again.
            try await Task.sleep(for: Self.afterShortLease)
            let new = try #require(try await store.claimNext(worker: "w", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(new.deployment.id == old.deployment.id)
            #expect(new.attempt == old.attempt + 1)

            // The old pipeline's writes are fenced by its attempt: none lands, though the owner matches.
            #expect(try await store.renewLease(old, leaseDuration: .seconds(30)) == .lost)
            #expect(try await !store.appendEvent(old, NewEvent(step: "rollout", kind: .info, message: "stale")))
            #expect(try await !store.saveManifests(old, compose: "stale", kubernetes: "stale", at: Date()))
            #expect(try await !store.release(old, event: NewEvent(step: "release", kind: .info, message: "stale")))
            #expect(
                try await !store.finish(
                    old, status: .failed, error: "stale",
                    event: NewEvent(step: "finish", kind: .finished, outcome: .failed, message: "stale")))

            #expect(try await store.renewLease(new, leaseDuration: .seconds(30)) == .held(cancelRequested: false))
            let current = try #require(try await store.deployment(id: new.deployment.id))
            #expect(current.status == .running)
            #expect(current.attempt == new.attempt)
            #expect(try await store.events(deploymentID: current.id, after: nil, limit: 100).items.allSatisfy { $0.message != "stale" })
        }
    }

    @Test(arguments: TestBackend.available)
    func leaseExpiryFollowsTheDatabaseClock(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            _ = try await store.createDeployment(Fixtures.newDeployment())
            // The work queue takes no clock from the worker: a claim's and a renewal's lease run from the
            // database's now, so workers whose clocks disagree still agree on when a lease expires.
            let claim = try #require(try await store.claimNext(worker: "first", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(try await store.claimNext(worker: "other", leaseDuration: .seconds(30), maxAttempts: 3) == nil)
            let held = try #require(try await store.deployment(id: claim.deployment.id))
            let expires = try #require(held.leaseExpiresAt)
            #expect(abs(expires.timeIntervalSinceNow - 30) < 10, "the lease expires 30 s from the database's now")
            _ = try await store.renewLease(claim, leaseDuration: .seconds(30))
            let renewed = try #require(try await store.deployment(id: claim.deployment.id)?.leaseExpiresAt)
            #expect(abs(renewed.timeIntervalSinceNow - 30) < 10)
        }
    }

    @Test(arguments: TestBackend.available)
    func aReleaseWithCancellationRequestedEndsCancelled(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let queued = try await store.createDeployment(Fixtures.newDeployment()).deployment
            let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 3))
            #expect(
                try await store.cancelDeployment(id: queued.id, by: "key_test", at: Date())
                    == .cancelRequested(
                        try #require(
                            try await store.deployment(id: queued.id))))
            // The worker is draining and gives the deployment back: it must not go back to the queue.
            #expect(try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "shutting down")))
            let ended = try #require(try await store.deployment(id: queued.id))
            #expect(ended.status == .cancelled)
            #expect(ended.finishedAt != nil)
            #expect(ended.leaseOwner == nil)
            #expect(try await store.claimNext(worker: "b", leaseDuration: .seconds(30), maxAttempts: 3) == nil)
            let last = try #require(try await store.events(deploymentID: queued.id, after: nil, limit: 100).items.last)
            #expect(last.kind == .finished)
            #expect(last.outcome == .cancelled)
        }
    }

    @Test(arguments: TestBackend.available)
    func anExpiredLeaseWithCancellationRequestedIsNeverClaimed(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let queued = try await store.createDeployment(Fixtures.newDeployment()).deployment
            _ = try #require(try await store.claimNext(worker: "a", leaseDuration: Self.shortLease, maxAttempts: 3))
            _ = try await store.cancelDeployment(id: queued.id, by: "key_test", at: Date())
            // The worker died before it saw the request; its lease expires.
            try await Task.sleep(for: Self.afterShortLease)
            #expect(try await store.claimNext(worker: "b", leaseDuration: .seconds(30), maxAttempts: 3) == nil)
            let ended = try #require(try await store.deployment(id: queued.id))
            #expect(ended.status == .cancelled)
            #expect(ended.leaseOwner == nil)
            let events = try await store.events(deploymentID: queued.id, after: nil, limit: 100).items
            #expect(events.filter { $0.kind == .finished }.map(\.outcome) == [.cancelled])
        }
    }

    @Test(arguments: TestBackend.available)
    func releasesAndExpiredLeasesDoNotUseUpAttempts(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let queued = try await store.createDeployment(Fixtures.newDeployment()).deployment
            // One attempt allowed; the deployment is released twice and its lease expires once: none of
            // these is a failure, so it is still claimable, and housekeeping does not fail it.
            for _ in 0..<2 {
                let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 1))
                #expect(try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "draining")))
            }
            _ = try #require(try await store.claimNext(worker: "a", leaseDuration: Self.shortLease, maxAttempts: 1))
            try await Task.sleep(for: Self.afterShortLease)
            #expect(try await store.failExhausted(maxAttempts: 1).isEmpty)
            let takeover = try #require(try await store.claimNext(worker: "b", leaseDuration: .seconds(30), maxAttempts: 1))
            #expect(takeover.deployment.id == queued.id)
            #expect(takeover.attempt == 4)
            #expect(takeover.failures == 0)
            #expect(takeover.releases == 3)
        }
    }

    /// Releases use up no attempt, but a deployment cannot be claimed for ever: one whose every attempt ends
    /// without finishing (its worker dies each time, say) fails after ten times `maxAttempts` claims.
    @Test(arguments: TestBackend.available)
    func claimsWithoutFinishingAreBounded(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let queued = try await store.createDeployment(Fixtures.newDeployment()).deployment
            for _ in 0..<10 {
                let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 1))
                #expect(try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "worker stopped")))
            }
            #expect(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 1) == nil, "no eleventh claim")
            #expect(try await store.failExhausted(maxAttempts: 1) == [queued.id])
            let failed = try #require(try await store.deployment(id: queued.id))
            #expect(failed.status == .failed)
            #expect(failed.error == "gave up after 10 attempts that never finished (each one's worker stopped or lost it)")
        }
    }

    /// A cancellation requested on a deployment that has used up its claims still ends it cancelled, not failed.
    @Test(arguments: TestBackend.available)
    func aCancellationIsFinalEvenWhenTheClaimsAreUsedUp(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let queued = try await store.createDeployment(Fixtures.newDeployment()).deployment
            for _ in 0..<9 {
                let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 1))
                #expect(try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "worker stopped")))
            }
            _ = try #require(try await store.claimNext(worker: "a", leaseDuration: Self.shortLease, maxAttempts: 1))
            _ = try await store.cancelDeployment(id: queued.id, by: "key_test", at: Date())
            try await Task.sleep(for: Self.afterShortLease)
            #expect(try await store.failExhausted(maxAttempts: 1).isEmpty, "not failed: its cancellation comes first")
            #expect(try await store.claimNext(worker: "b", leaseDuration: .seconds(30), maxAttempts: 1) == nil)
            let ended = try #require(try await store.deployment(id: queued.id))
            #expect(ended.status == .cancelled)
        }
    }

    @Test(arguments: TestBackend.available)
    func failuresUseUpAttempts(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let queued = try await store.createDeployment(Fixtures.newDeployment()).deployment
            for failure in 1...2 {
                let claim = try #require(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 2))
                #expect(claim.failures == failure - 1)
                #expect(
                    try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "error"), afterFailure: true))
            }
            #expect(try await store.claimNext(worker: "a", leaseDuration: .seconds(30), maxAttempts: 2) == nil, "no third attempt")
            #expect(try await store.failExhausted(maxAttempts: 2) == [queued.id])
            let failed = try #require(try await store.deployment(id: queued.id))
            #expect(failed.status == .failed)
            #expect(failed.error == "gave up after 2 failed attempts")
        }
    }

    @Test(arguments: TestBackend.available)
    func aDatabaseMigratedByANewerVersionStopsTheStore(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            // A newer binary applied a migration this one does not know.
            switch store {
            case let sqlite as SQLiteStore:
                try await sqlite.pool.write { db in
                    try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('9999_from_the_future')")
                }
            case let postgres as PostgresStore:
                try await postgres.client.query(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES ('9999_from_the_future', 0)", logger: postgres.logger
                ).drain()
            default:
                Issue.record("unknown backend \(store.backend)")
            }
            await #expect {
                try await store.migrate()
            } throws: { error in
                "\(error)".contains("migrated by a newer version") && "\(error)".contains("9999_from_the_future")
            }
        }
    }

    @Test
    func anUnreachablePostgreSQLAnswersUnavailableWithinTheDeadline() async throws {
        // Nothing listens on this port: the pool would wait for a connection (up to its 15 s circuit
        // breaker); the store gives up at its deadline instead, with an error the API answers with 503.
        let location = try DatabaseLocation(url: "postgres://code@127.0.0.1:\(freePort())/nowhere?sslmode=disable")
        let handle = try StoreHandle.open(location, logger: Logger(label: "store-test"))
        try await handle.withServices { store in
            for operation in ["get", "claim", "ping"] {
                let started = ContinuousClock.now
                await #expect {
                    switch operation {
                    case "get": _ = try await store.deployment(id: "dep_none")
                    case "claim": _ = try await store.claimNext(worker: "w", leaseDuration: .seconds(30), maxAttempts: 3)
                    default: try await store.ping()
                    }
                } throws: { error in
                    if case StoreError.unavailable = error { return true }
                    return false
                }
                // Not a timing measurement: it shows the operation gives up instead of waiting for the pool's
                // 15 s circuit breaker (the PostgreSQL restart drill checks the 2 s bound end to end). Within the
                // ceiling, with a timer's slack: a test process that is far behind waits past the silence limit
                // (StarvationProbe), at most to the ceiling.
                let bound = PostgresStore.operationCeiling + .seconds(2)
                #expect(ContinuousClock.now - started < bound, "\(operation) gave up at its deadline")
            }
        }
    }

    @Test(arguments: TestBackend.available)
    func auditEntriesKeepTheClient(backend: TestBackend) async throws {
        try await withStore(backend) { store in
            let at = Date(millisecondsSinceEpoch: 1_700_000_000_000)
            try await store.recordAudit(
                NewAuditEntry(
                    at: at, keyID: "key_1", action: "deployment.create", target: nil, outcome: "succeeded", status: 201, requestID: "r1",
                    method: "POST", path: "/v1/deployments", client: "code-mcp/1.0"))
            try await store.recordAudit(
                NewAuditEntry(
                    at: at, keyID: "key_1", action: "deployment.create", target: nil, outcome: "succeeded", status: 201, requestID: "r2",
                    method: "POST", path: "/v1/deployments"))
            let entries = try await store.auditEntries(limit: 10, before: nil).items
            #expect(entries.map(\.client) == [nil, "code-mcp/1.0"])
        }
    }
}
