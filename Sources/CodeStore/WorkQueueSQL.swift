/// The work queue's conditions, written once for both backends (each gives its own clock expression).
enum WorkQueueSQL {
    /// The live queue: the rows a worker may hold or claim; the predicate of PostgreSQL's partial indexes
    /// `deployments_live_claim` and `deployments_live_cancel_requested` (SchemaMigrations), and a term of its own
    /// in every statement that looks for unheld rows, so that each backend can read those rows through an
    /// index.
    static let live = "status IN ('queued', 'running')"

    /// Live and held by no worker: queued, or running with a lease that expired before `now`.
    static func unheld(now: String) -> String { "(\(live) AND (status = 'queued' OR lease_expires_at < \(now)))" }

    /// Neither failed nor claimed too often to be claimed again.
    static func withinLimits(maxAttempts: Int) -> String {
        "(failures < \(maxAttempts) AND attempt < \(StoreEvents.claimLimit(maxAttempts: maxAttempts)))"
    }

    /// Unheld, no cancellation requested, and past its limits: what `failExhausted` ends failed.
    static func exhausted(now: String, maxAttempts: Int) -> String {
        "\(unheld(now: now)) AND cancel_requested = 0 AND NOT \(withinLimits(maxAttempts: maxAttempts))"
    }
}
