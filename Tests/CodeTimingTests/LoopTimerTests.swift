import CodeTiming
import Synchronization
import Testing

/// The event loops' timers, which the worker's heartbeat, polls and waits and the store's deadlines use
/// instead of `Task.sleep`.
@Suite("Loop timers")
struct LoopTimerTests {
    @Test(.timeLimit(.minutes(1)))
    func sleepWaitsAtLeastItsDuration() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        try await LoopTimer.sleep(for: .milliseconds(50))
        #expect(clock.now - start >= .milliseconds(50))
    }

    /// A cancelled sleep ends at once with `CancellationError`, as `Task.sleep` does; a task cancelled
    /// before it sleeps does not sleep at all.
    @Test(.timeLimit(.minutes(1)))
    func cancellationEndsASleepAtOnce() async throws {
        let sleeper = Task { try await LoopTimer.sleep(for: .seconds(600)) }
        try await Task.sleep(for: .milliseconds(20))
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }

        let cancelledFirst = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await LoopTimer.sleep(for: .seconds(600))
        }
        await #expect(throws: CancellationError.self) { try await cancelledFirst.value }
    }

    @Test(.timeLimit(.minutes(1)))
    func afterRunsItsActionUnlessCancelled() async throws {
        let ran = Atomic(0)
        let cancelled = LoopTimer.after(.milliseconds(10)) { ran.add(1, ordering: .relaxed) }
        cancelled.cancel()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            _ = LoopTimer.after(.milliseconds(30)) {
                ran.add(10, ordering: .relaxed)
                done.resume()
            }
        }
        #expect(ran.load(ordering: .relaxed) == 10, "the cancelled action did not run; the other one did")
    }

    /// A repeating timer fires again after each delay its action returns and stops at the first nil; one
    /// cancelled between firings does not fire again.
    @Test(.timeLimit(.minutes(1)))
    func repeatingRearmsUntilItsActionSaysStopOrItIsCancelled() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        let firings = Atomic(0)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            _ = LoopTimer.repeating(after: .milliseconds(10)) {
                let count = firings.add(1, ordering: .relaxed).newValue
                if count < 3 { return .milliseconds(20) }
                done.resume()
                return nil
            }
        }
        #expect(clock.now - start >= .milliseconds(50), "10 ms, then 20 ms twice")
        try await Task.sleep(for: .milliseconds(60))
        #expect(firings.load(ordering: .relaxed) == 3, "nil ended it")

        let cancelledFirings = Atomic(0)
        let firstFiring = AsyncStream<Void>.makeStream()
        let timer = LoopTimer.repeating(after: .milliseconds(5)) {
            if cancelledFirings.add(1, ordering: .relaxed).newValue == 1 { firstFiring.continuation.finish() }
            return .milliseconds(50)
        }
        for await _ in firstFiring.stream {}
        timer.cancel()
        try await Task.sleep(for: .milliseconds(150))
        #expect(cancelledFirings.load(ordering: .relaxed) == 1, "cancelled after the first firing, before the second")
    }
}
