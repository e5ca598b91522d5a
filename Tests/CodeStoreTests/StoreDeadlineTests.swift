import CodeStore
import Testing

/// The deadline of every PostgreSQL store operation: it holds even when the operation ignores
/// cancellation (a pool waiting for a connection to a server that is down).
@Suite("Store deadline")
struct StoreDeadlineTests {
    @Test(.timeLimit(.minutes(1)))
    func anOperationInTimeReturnsItsValue() async throws {
        #expect(try await StoreDeadline.run(.seconds(30), operation: "quick") { 42 } == 42)
        await #expect(throws: StoreError.conflict("x")) {
            try await StoreDeadline.run(.seconds(30), operation: "fails") { () async throws -> Int in throw StoreError.conflict("x") }
        }
    }

    /// The operation below ignores cancellation and takes 3 s: the caller gets `exceeded` at the deadline
    /// all the same, long before.
    @Test(.timeLimit(.minutes(1)))
    func theDeadlineHoldsWhenTheOperationIgnoresCancellation() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: StoreDeadline.Exceeded.self) {
            try await StoreDeadline.run(.milliseconds(100), operation: "stuck") { () async throws -> Int in
                // A detached task does not inherit the cancellation: this wait runs its 3 s whatever happens.
                await Task.detached { try? await Task.sleep(for: .seconds(3)) }.value
                return 0
            }
        }
        #expect(clock.now - start >= .milliseconds(100))
        #expect(clock.now - start < .seconds(2), "returned at the deadline, not when the operation ended")
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingTheCallerEndsTheWait() async throws {
        let caller = Task {
            try await StoreDeadline.run(.seconds(600), operation: "long") { () async throws -> Int in
                try await Task.sleep(for: .seconds(600))
                return 0
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
    }
}
