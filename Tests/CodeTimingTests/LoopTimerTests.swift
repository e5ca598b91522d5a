import CodeTiming
import NIOConcurrencyHelpers
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

    /// The cancelled timer is due after 300 ms, not 10: with 10, a full test run on two cores once left the
    /// test's thread off the CPU between arming and cancelling for longer, and the action ran (correctly).
    @Test(.timeLimit(.minutes(1)))
    func afterRunsItsActionUnlessCancelled() async throws {
        let ran = Atomic(0)
        let clock = ContinuousClock()
        let armed = clock.now
        let cancelled = LoopTimer.after(.milliseconds(300)) { ran.add(1, ordering: .relaxed) }
        cancelled.cancel()
        let cancelledBeforeDue = clock.now - armed < .milliseconds(300)
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            _ = LoopTimer.after(.milliseconds(400)) {
                ran.add(10, ordering: .relaxed)
                done.resume()
            }
        }
        // The test's thread off the CPU for 300 ms between the two: the action may have run, rightly.
        guard cancelledBeforeDue else { return }
        #expect(ran.load(ordering: .relaxed) == 10, "the cancelled action did not run; the other one did")
    }

    /// A repeating timer fires again after each delay its action returns and stops at the first nil; one
    /// cancelled while it fires (so before its next firing is armed) does not fire again.
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
        let timer = NIOLockedValueBox<LoopTimer.Pending?>(nil)
        timer.withLockedValue { stored in
            stored = LoopTimer.repeating(after: .milliseconds(20)) {
                cancelledFirings.add(1, ordering: .relaxed)
                // Cancelled before the next firing is armed: the re-arm must see it.
                timer.withLockedValue { $0 }?.cancel()
                return .milliseconds(1)
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(cancelledFirings.load(ordering: .relaxed) == 1, "cancelled in its first firing, it never fired again")
    }
}
