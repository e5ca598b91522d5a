import Synchronization

/// Lets through at most one log line per `interval` for an event anyone can cause at will (a refused
/// request, say), so that a flood of them cannot flood the logs too. Each line that gets through is told
/// how many were held back since the last one; counters, not logs, carry the exact numbers.
public final class SampledLog: Sendable {
    private struct State {
        var lastWritten: ContinuousClock.Instant?
        var suppressed = 0
    }

    private let interval: Duration
    private let state = Mutex(State())

    public init(interval: Duration = .seconds(1)) {
        self.interval = interval
    }

    /// Calls `write` with the number of events held back since the last line, or counts this one as held back.
    public func record(_ write: (_ suppressed: Int) -> Void) {
        let now = ContinuousClock.now
        let suppressed: Int? = state.withLock { state in
            if let last = state.lastWritten, now - last < interval {
                state.suppressed += 1
                return nil
            }
            defer { state = State(lastWritten: now, suppressed: 0) }
            return state.suppressed
        }
        if let suppressed { write(suppressed) }
    }
}
