import Logging
import PostgresNIO

extension PostgresConnection {
    /// Appends an event; every change to a deployment writes one in the same transaction.
    func insertEvent(_ event: EventInsert, logger: Logger) async throws {
        try await query(
            """
            INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, message)
            VALUES (\(event.deploymentID), \(event.at), \(event.attempt), \(event.workerID), \(event.step), \(event.kind),
                \(event.outcome), \(event.durationMs), \(event.message))
            """, logger: logger
        ).drain()
    }

    /// Wakes the workers that listen for queued deployments. PostgreSQL delivers the notice when the
    /// transaction commits, and never if it rolls back, so a worker is not woken for a deployment it
    /// cannot see yet.
    func notifyQueued(_ deploymentID: String, logger: Logger) async throws {
        try await query("SELECT pg_notify(\(PostgresStore.queuedChannel), \(deploymentID))", logger: logger).drain()
    }
}
