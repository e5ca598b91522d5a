import GRDB

extension Database {
    /// Appends an event; every change to a deployment writes one in the same transaction.
    func insertEvent(_ event: EventInsert) throws {
        try cachedStatement(
            sql: """
                INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, message)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            event.deploymentID, event.at, event.attempt, event.workerID, event.step, event.kind, event.outcome, event.durationMs,
            event.message,
        ])
    }
}
