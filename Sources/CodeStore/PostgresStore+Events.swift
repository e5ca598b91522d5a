import Logging
import PostgresNIO

extension PostgresConnection {
    /// Appends an event; every change to a deployment writes one in the same transaction.
    func insertEvent(_ event: EventInsert, logger: Logger) async throws {
        try await query("\(insertEvent: event)", logger: logger).drain()
    }

    /// Wakes the workers that listen for queued deployments. PostgreSQL delivers the notice when the
    /// transaction commits, and never if it rolls back, so a worker is not woken for a deployment it
    /// cannot see yet.
    func notifyQueued(_ deploymentID: String, logger: Logger) async throws {
        try await query("SELECT pg_notify(\(PostgresStore.queuedChannel), \(deploymentID))", logger: logger).drain()
    }
}

extension PostgresQuery.StringInterpolation {
    /// The event's INSERT, written once for every statement that appends one: `VALUES (...)`, or with
    /// `source` (a CTE of the same statement) `SELECT ... FROM source`, which writes the event only when
    /// that CTE has a row (the lease was held, the deployment was finished).
    mutating func appendInterpolation(insertEvent event: EventInsert, from source: String? = nil) {
        appendLiteral(
            "INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, message) "
        )
        appendLiteral(source == nil ? "VALUES (" : "SELECT ")
        appendInterpolation(event.deploymentID)
        appendLiteral(", ")
        appendInterpolation(event.at)
        appendLiteral(", ")
        appendInterpolation(event.attempt)
        appendLiteral(", ")
        appendInterpolation(event.workerID)
        appendLiteral(", ")
        appendInterpolation(event.step)
        appendLiteral(", ")
        appendInterpolation(event.kind)
        appendLiteral(", ")
        appendInterpolation(event.outcome)
        appendLiteral(", ")
        appendInterpolation(event.durationMs)
        appendLiteral(", ")
        appendInterpolation(event.message)
        appendLiteral(source.map { " FROM \($0)" } ?? ")")
    }
}
