import CodeRuntime
import CodeStore
import CodeTiming
import Foundation
import NIOConcurrencyHelpers

/// Why a running pipeline must stop before its next step or out of a wait.
enum Interruption: Error, Equatable, Sendable {
    /// A client asked to cancel the deployment: end it as cancelled.
    case cancelRequested
    /// Another worker holds the lease now: stop and change nothing.
    case leaseLost
    /// This worker is shutting down: give the deployment back to the queue.
    case draining
}

extension Interruption {
    fileprivate var priority: Int {
        switch self {
        case .draining: 0
        case .cancelRequested: 1
        case .leaseLost: 2
        }
    }
}

/// How the heartbeat renews a lease: often enough, and with a deadline, so that a renewal that does not
/// come back in time counts as a lost lease (the pipeline stops) while the lease still has time left.
struct LeaseRenewal: Sendable {
    let leaseDuration: Duration

    /// Renew every third of the lease.
    var interval: Duration { leaseDuration / 3 }
    /// A renewal slower than this is a lost lease: with one interval between renewals and one for the
    /// deadline, a third of the lease is left for the pipeline to stop at its next checkpoint.
    var deadline: Duration { leaseDuration / 3 }
    /// With no successful renewal for this long, the lease may be about to expire: stop.
    var giveUpAfter: Duration { leaseDuration * 2 / 3 }

    /// Runs `renew` with the deadline; a renewal that misses it counts as `.lost`. (The deadline holds
    /// even if the store ignores cancellation, e.g. SQLite waiting on another process's write lock.) An
    /// error that comes back in time is thrown: the heartbeat retries until `giveUpAfter`.
    func renew(_ renew: @escaping @Sendable () async throws -> LeaseState) async throws -> LeaseState {
        do {
            return try await StoreDeadline.run(deadline, operation: "renew lease", renew)
        } catch StoreDeadline.Exceeded.exceeded {
            return .lost
        }
    }
}

/// The state a pipeline checks between steps and during every wait; set by its heartbeat and by
/// shutdown.
final class PipelineControl: Sendable {
    private let state = NIOLockedValueBox<Interruption?>(nil)

    /// The strongest interruption wins: a lost lease overrides any other (without the lease the pipeline
    /// may change nothing, not even to record a cancellation), and a cancellation overrides draining (a
    /// cancelled deployment is never released for another worker to roll out).
    func interrupt(_ reason: Interruption) {
        state.withLockedValue { current in
            if current.map({ reason.priority > $0.priority }) ?? true { current = reason }
        }
    }

    var interruption: Interruption? { state.withLockedValue { $0 } }

    func checkpoint() throws(Interruption) {
        if let interruption { throw interruption }
    }

    /// Sleeps for `duration`, waking early (by throwing) when the pipeline is interrupted.
    func sleep(for duration: Duration) async throws {
        let deadline = ContinuousClock.now + duration
        while true {
            try checkpoint()
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero { return }
            try await LoopTimer.sleep(for: min(remaining, Self.granularity))
        }
    }

    /// How quickly waits notice an interruption.
    static let granularity: Duration = .milliseconds(25)
}

/// Wakes the claim loop early: a NOTIFY arrived, or a pipeline finished and freed a slot.
final class Wakeup: Sendable {
    private let state = NIOLockedValueBox<(pending: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func signal() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLockedValue { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns on a signal (also one that came before the call) or after `timeout`.
    func wait(timeout: Duration) async {
        // The timeout is a signal on the loop's timer (not a sleeping child task: LoopTimer says why). One
        // that fires between the wake-up and its cancellation leaves a signal pending: the next wait
        // returns at once, and the claim loop looks for work one extra time.
        let timeout = LoopTimer.after(timeout) { self.signal() }
        await next()
        timeout.cancel()
    }

    private func next() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            self.signal()
        }
    }
}
