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

/// The state a pipeline checks between steps and during every wait; set by its heartbeat and by
/// shutdown.
final class PipelineControl: Sendable {
    private let state = NIOLockedValueBox<Interruption?>(nil)

    /// The first interruption wins, except that a lost lease overrides any other: without the lease
    /// the pipeline may change nothing, not even to record a cancellation.
    func interrupt(_ reason: Interruption) {
        state.withLockedValue { current in
            if current == nil || reason == .leaseLost { current = reason }
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
            try await Task.sleep(for: min(remaining, Self.granularity))
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
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                if (try? await Task.sleep(for: timeout)) != nil { self.signal() }
            }
            await self.next()
            group.cancelAll()
        }
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
