import CodeRuntime
import Synchronization
import Testing

/// The event loops' timers, which the worker's heartbeat, polls and waits use instead of `Task.sleep`.
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
}
