import CodeDomain
import Foundation
import Logging
import PostgresNIO

// A worker's changes are guarded: they land only while its lease is held (`lease_owner`, the claim's
// `attempt` as a fencing token, and status `running`), inside one transaction with whatever depends on
// the guard. Lease times come from the server's clock, the one every worker reads.
extension PostgresStore: WorkQueue {
    /// Now in milliseconds since the epoch, by the server (the statement's start time).
    static let databaseNow = "(EXTRACT(EPOCH FROM statement_timestamp()) * 1000)::BIGINT"

    /// Queued, or running with an expired lease: no worker holds it.
    static let unheld = WorkQueueSQL.unheld(now: databaseNow)

    public func claimNext(worker: String, leaseDuration: Duration, maxAttempts: Int) async throws -> Claim? {
        try await metrics.measure("queue.claim") { [self] () -> Claim? in
            // One statement, so the choice and the claim are atomic; concurrent workers skip the rows
            // others are claiming instead of waiting for them. (Unlike SQLite, no read comes first: an
            // update that matches nothing takes no lock, so idle workers cost one statement a poll.)
            // A cancellation requested while it ran (then released, or its lease expired) is final: such
            // rows end cancelled in the same statement (the CTE), and are never claimed.
            let claimed = try await client.execute(
                ClaimNextStatement(worker: worker, leaseMilliseconds: leaseDuration.wholeMilliseconds, maxAttempts: maxAttempts),
                logger: logger
            ).firstRow()
            return try claimed.map { try $0.claim(by: worker) }
        }
    }

    public func failExhausted(maxAttempts: Int) async throws -> [String] {
        try await metrics.measure("queue.fail_exhausted") { [self] () -> [String] in
            let now = Self.databaseNow
            let exhausted = WorkQueueSQL.exhausted(now: now, maxAttempts: maxAttempts)
            let anyExhausted = try await client.query(
                "SELECT seq FROM deployments WHERE \(unescaped: exhausted) LIMIT 1", logger: logger
            ).firstRecord { try $0.decode(Int64.self) }
            guard anyExhausted != nil else { return [] }
            return try await client.withTransaction(logger: logger) { connection -> [String] in
                // Locked in one order (seq), so that two workers doing this at once cannot deadlock; the
                // second waits, then finds the rows failed and skips them.
                let expired = try await connection.query(
                    """
                    SELECT \(unescaped: ExhaustedLeaseRecord.columns) FROM deployments
                    WHERE \(unescaped: exhausted)
                    ORDER BY seq FOR UPDATE
                    """, logger: logger
                ).records { try ExhaustedLeaseRecord($0) }
                for lease in expired {
                    let reason = StoreEvents.exhaustedReason(lease, maxAttempts: maxAttempts)
                    try await connection.query(
                        """
                        UPDATE deployments SET status = 'failed', error = \(reason), finished_at = \(unescaped: now),
                            updated_at = \(unescaped: now), lease_owner = NULL, lease_expires_at = NULL
                        WHERE id = \(lease.id)
                        """, logger: logger
                    ).drain()
                    try await connection.insertEvent(StoreEvents.exhausted(lease, reason: reason, at: Date()), logger: logger)
                }
                return expired.map(\.id)
            }
        }
    }

    public func renewLease(_ claim: Claim, leaseDuration: Duration) async throws -> LeaseState {
        try await metrics.measure("queue.renew") { [self] in
            let cancelRequested = try await client.execute(
                RenewLeaseStatement(claim: claim, leaseMilliseconds: leaseDuration.wholeMilliseconds), logger: logger
            ).firstRow()
            return cancelRequested.map { .held(cancelRequested: $0 != 0) } ?? .lost
        }
    }

    public func isCancelRequested(deploymentID: String) async throws -> Bool {
        try await metrics.measure("queue.cancel_requested") { [self] in
            let cancelRequested = try await client.execute(CancelRequestedStatement(deploymentID: deploymentID), logger: logger)
                .firstRow()
            return (cancelRequested ?? 0) != 0
        }
    }

    // appendEvents, saveManifests and finish: one prepared statement each (PostgresStatements.swift).

    public func appendEvents(_ claim: Claim, _ events: [NewEvent]) async throws -> Bool {
        // An empty batch would insert no row and read as a lost lease.
        precondition(!events.isEmpty, "appendEvents needs an event")
        return try await metrics.measure("queue.event") { [self] in
            try await client.execute(AppendEventsStatement(claim: claim, events: EventBatch(events)), logger: logger).firstRow() != nil
        }
    }

    public func saveManifests(
        _ claim: Claim, compose: String, kubernetes: String, at now: Date, events: [NewEvent]
    ) async throws -> Bool {
        try await metrics.measure("queue.manifests") { [self] in
            try await client.execute(
                SaveManifestsStatement(
                    claim: claim, renderedAt: now.millisecondsSinceEpoch, compose: compose, kubernetes: kubernetes,
                    events: EventBatch(events)),
                logger: logger
            ).firstRow() != nil
        }
    }

    public func finish(_ claim: Claim, status: DeploymentStatus, error: String?, events: [NewEvent]) async throws -> Bool {
        try status.requireTerminal()
        return try await metrics.measure("queue.finish") { [self] in
            try await client.execute(FinishStatement(claim: claim, status: status.rawValue, error: error, events: events), logger: logger)
                .firstRow() != nil
        }
    }

    public func release(_ claim: Claim, events: [NewEvent], afterFailure: Bool) async throws -> Bool {
        let event = events.finalEvent
        return try await metrics.measure("queue.release") { [self] in
            let at = event.at.millisecondsSinceEpoch
            let failure: Int64 = afterFailure ? 1 : 0
            return try await client.withTransaction(logger: logger) { connection in
                // With a cancellation requested, the deployment ends here: no other worker may roll it out.
                let status = try await connection.query(
                    """
                    UPDATE deployments SET
                        status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'queued' END,
                        error = CASE WHEN cancel_requested = 1 THEN \(StoreEvents.cancelledReason) ELSE error END,
                        finished_at = CASE WHEN cancel_requested = 1 THEN \(at) ELSE NULL END,
                        failures = failures + \(failure), releases = releases + \(1 - failure),
                        lease_owner = NULL, lease_expires_at = NULL, updated_at = \(at)
                    WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND attempt = \(claim.attempt) AND status = 'running'
                    RETURNING status
                    """, logger: logger
                ).firstRecord { try $0.decode(String.self) }
                guard let status else { return false }
                for event in events { try await connection.insertEvent(EventInsert(claim, event), logger: logger) }
                if status == DeploymentStatus.cancelled.rawValue {
                    try await connection.insertEvent(
                        StoreEvents.cancelledInsteadOfRun(
                            CancelledRecord(id: claim.deployment.id, attempt: Int64(claim.attempt)), at: event.at, by: claim.owner,
                            when: "when the worker gave it back"), logger: logger)
                } else {
                    // Queued again: a listening worker takes it at once.
                    try await connection.notifyQueued(claim.deployment.id, logger: logger)
                }
                return true
            }
        }
    }

    public func queueStatus() async throws -> QueueStatus {
        try await metrics.measure("queue.depth") { [self] in
            let status = try await client.query(
                "SELECT COUNT(*), \(unescaped: Self.databaseNow) - MIN(created_at) FROM deployments WHERE status = 'queued'", logger: logger
            ).firstRecord { row in
                let (depth, waited) = try row.decode((Int64, Int64?).self)
                return QueueStatus(depth: Int(depth), oldestAge: waited.map { .milliseconds(max(0, $0)) })
            }
            return status ?? QueueStatus(depth: 0, oldestAge: nil)
        }
    }
}
