import Logging
import PostgresNIO

extension PostgresConnection {
    /// Appends an event; every change to a deployment writes one in the same transaction.
    func insertEvent(_ event: EventInsert, logger: Logger) async throws {
        _ = try await execute(InsertEventStatement(event: event), logger: logger).firstRow()
    }

    /// Wakes the workers that listen for queued deployments. PostgreSQL delivers the notice when the
    /// transaction commits, and never if it rolls back, so a worker is not woken for a deployment it
    /// cannot see yet.
    func notifyQueued(_ deploymentID: String, logger: Logger) async throws {
        try await query("SELECT pg_notify(\(PostgresStore.queuedChannel), \(deploymentID))", logger: logger).drain()
    }
}
