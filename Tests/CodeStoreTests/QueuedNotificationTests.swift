import CodeDomain
import CodeStore
import CodeTestSupport
import Foundation
import PostgresNIO
import Testing

/// PostgreSQL wakes listening workers with NOTIFY, sent inside the transaction that queues a deployment.
@Suite("Queued notifications (PostgreSQL)")
struct QueuedNotificationTests {
    @Test(.enabled(if: TestBackend.available.contains(.postgres)), .timeLimit(.minutes(1)))
    func queuingAndReleasingNotifyButAReplayDoesNot() async throws {
        try await withStore(.postgres) { store in
            let postgres = try #require(store as? PostgresStore)
            try await postgres.client.withConnection { connection in
                try await connection.listen(on: PostgresStore.queuedChannel) { notifications in
                    var received = notifications.makeAsyncIterator()
                    let first = try await store.createDeployment(Fixtures.newDeployment(idempotencyKey: "n1", requestHash: "h1")).deployment
                    #expect(try await received.next()?.payload == first.id)

                    // The replay inserts nothing, so it notifies nobody: the next notice is the second deployment's.
                    #expect(
                        try await store.createDeployment(Fixtures.newDeployment(idempotencyKey: "n1", requestHash: "h1"))
                            == .replayed(first))
                    let second = try await store.createDeployment(Fixtures.newDeployment()).deployment
                    #expect(try await received.next()?.payload == second.id)

                    // A lease that was not held releases nothing and notifies nobody; a held one does.
                    let claim = try #require(
                        try await store.claimNext(worker: "w", leaseDuration: .seconds(30), maxAttempts: 3))
                    var stranger = claim
                    stranger.owner = "someone-else"
                    #expect(try await !store.release(stranger, event: NewEvent(step: "release", kind: .info, message: "not mine")))
                    #expect(try await store.release(claim, event: NewEvent(step: "release", kind: .info, message: "shutting down")))
                    #expect(try await received.next()?.payload == claim.deployment.id)
                }
            }
        }
    }
}
