/// Waits, bounded, for a condition that another thread or process makes true: the one polling loop the
/// tests share, so that none can wait forever and each names what it waited for when it gives up.
public enum Polling {
    /// Checks `condition` every `interval` until it holds; throws `ProcessTimeout` naming `what` after
    /// `timeout`.
    public static func until(
        _ what: String, timeout: Duration = .seconds(10), every interval: Duration = .milliseconds(1),
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw ProcessTimeout(command: what, timeout: timeout) }
            try await Task.sleep(for: interval)
        }
    }
}
