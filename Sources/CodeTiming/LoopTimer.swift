import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Timers on the event loops, for the waits that run often: a heartbeat, a poll, a deadline. The runtime
/// (the worker's waits) and the store (every database operation's deadline) share them.
///
/// Why: `Task.sleep` does not go through the executor hook that puts Swift's jobs on the loops
/// (CodeRuntime's EventLoopExecutor); the concurrency runtime hands every delayed job to Dispatch, whose
/// manager thread arms a timer, wakes and hands the job back to the loops: a thread switch and a `write`
/// per sleep, ~15 % of code-worker's CPU when each deployment slept once or twice (docs/performance.md).
/// A NIO scheduled task is an entry in the loop's own timer heap, fired by the `epoll_wait` the loop makes
/// anyway, and removed again when cancelled.
public enum LoopTimer {
    /// `Task.sleep(for:)` on the event loop's timer: returns after `duration`, throws `CancellationError`
    /// as soon as the calling task is cancelled.
    public static func sleep(for duration: Duration) async throws {
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(duration)) {}
        do {
            try await withTaskCancellationHandler {
                try await timer.futureResult.get()
            } onCancel: {
                timer.cancel()
            }
        } catch EventLoopError.cancelled {
            throw CancellationError()
        }
    }

    /// Runs `action` on an event loop after `delay`, unless the returned timer is cancelled first.
    public static func after(_ delay: Duration, _ action: @escaping @Sendable () -> Void) -> Pending {
        repeating(after: delay) {
            action()
            return nil
        }
    }

    /// Runs `fire` on an event loop after `delay`, and again after each delay it returns, until it returns
    /// nil or the returned timer is cancelled: a deadline that may move while it waits.
    public static func repeating(after delay: Duration, _ fire: @escaping @Sendable () -> Duration?) -> Pending {
        let pending = Pending(loop: MultiThreadedEventLoopGroup.singleton.any(), fire: fire)
        pending.arm(delay)
        return pending
    }

    /// A timer `after` or `repeating` set.
    public final class Pending: Sendable {
        private let loop: any EventLoop
        private let fire: @Sendable () -> Duration?
        private let state = NIOLockedValueBox<(scheduled: Scheduled<Void>?, cancelled: Bool)>((nil, false))

        fileprivate init(loop: any EventLoop, fire: @escaping @Sendable () -> Duration?) {
            self.loop = loop
            self.fire = fire
        }

        fileprivate func arm(_ delay: Duration) {
            let scheduled = loop.scheduleTask(in: TimeAmount(delay)) { [self] in
                // A `cancel` that came after this firing was scheduled but before it was stored (the loop can
                // fire it first when `repeating` is called from another thread) is seen here.
                guard !state.withLockedValue({ $0.cancelled }) else { return }
                if let next = fire() { arm(next) }
            }
            // `cancel` may have run before this timer was stored (between two firings, or on another thread).
            let cancelled = state.withLockedValue { state in
                state.scheduled = scheduled
                return state.cancelled
            }
            if cancelled { scheduled.cancel() }
        }

        /// Keeps the timer from firing (again), if it has not fired for the last time yet.
        public func cancel() {
            let scheduled = state.withLockedValue { state in
                state.cancelled = true
                return state.scheduled
            }
            scheduled?.cancel()
        }
    }
}
