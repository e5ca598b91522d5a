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
    private static let unheld = "(status = 'queued' OR (status = 'running' AND lease_expires_at < \(databaseNow)))"

    /// Unheld, and not failed or claimed too often.
    private static func claimable(maxAttempts: Int) -> String {
        "\(unheld) AND failures < \(maxAttempts) AND attempt < \(StoreEvents.claimLimit(maxAttempts: maxAttempts))"
    }

    public func claimNext(worker: String, leaseDuration: Duration, maxAttempts: Int) async throws -> Claim? {
        try await metrics.measure("queue.claim") { [self] () -> Claim? in
            let now = Self.databaseNow
            let claimable = Self.claimable(maxAttempts: maxAttempts)
            // One statement, so the choice and the claim are atomic; concurrent workers skip the rows
            // others are claiming instead of waiting for them. (Unlike SQLite, no read comes first: an
            // update that matches nothing takes no lock, so idle workers cost one statement a poll.)
            // A cancellation requested while it ran (then released, or its lease expired) is final: such
            // rows end cancelled in the same statement (the CTE), and are never claimed.
            let claimed = try await client.query(
                """
                WITH cancelled AS (
                    UPDATE deployments SET status = 'cancelled', error = \(StoreEvents.cancelledReason), finished_at = \(unescaped: now),
                        updated_at = \(unescaped: now), lease_owner = NULL, lease_expires_at = NULL
                    WHERE seq IN (
                        -- Whatever its attempts: a requested cancellation ends it cancelled, never failed or run.
                        -- Locked in seq order and skipping rows others hold, so claims neither wait nor deadlock.
                        SELECT seq FROM deployments WHERE cancel_requested = 1 AND \(unescaped: Self.unheld)
                        ORDER BY seq FOR UPDATE SKIP LOCKED
                    )
                    RETURNING id, attempt
                ), cancel_events AS (
                    INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, message)
                    SELECT id, \(unescaped: now), attempt, \(worker), 'cancel', 'finished', 'cancelled', NULL,
                        'cancelled on request before a worker ran it again'
                    FROM cancelled
                )
                UPDATE deployments SET status = 'running', lease_owner = \(worker),
                    lease_expires_at = \(unescaped: now) + \(leaseDuration.wholeMilliseconds),
                    attempt = attempt + 1, releases = releases + (CASE WHEN status = 'running' THEN 1 ELSE 0 END),
                    started_at = COALESCE(started_at, \(unescaped: now)), updated_at = \(unescaped: now)
                WHERE seq = (
                    SELECT seq FROM deployments
                    WHERE \(unescaped: claimable) AND cancel_requested = 0
                    ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
                )
                RETURNING \(unescaped: DeploymentRecord.columns)
                """, logger: logger
            ).firstRecord { try DeploymentRecord($0) }
            return try claimed.map { try $0.claim(by: worker) }
        }
    }

    public func failExhausted(maxAttempts: Int) async throws -> [String] {
        try await metrics.measure("queue.fail_exhausted") { [self] () -> [String] in
            let now = Self.databaseNow
            let exhausted =
                "(status = 'queued' OR (status = 'running' AND lease_expires_at < \(now))) AND cancel_requested = 0"
                + " AND (failures >= \(maxAttempts) OR attempt >= \(StoreEvents.claimLimit(maxAttempts: maxAttempts)))"
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
            let now = Self.databaseNow
            let cancelRequested = try await client.query(
                """
                UPDATE deployments SET lease_expires_at = \(unescaped: now) + \(leaseDuration.wholeMilliseconds), updated_at = \(unescaped: now)
                WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND attempt = \(claim.attempt) AND status = 'running'
                RETURNING cancel_requested
                """, logger: logger
            ).firstRecord { try $0.decode(Int64.self) }
            return cancelRequested.map { .held(cancelRequested: $0 != 0) } ?? .lost
        }
    }

    public func isCancelRequested(deploymentID: String) async throws -> Bool {
        try await metrics.measure("queue.cancel_requested") { [self] in
            let cancelRequested = try await client.query(
                "SELECT cancel_requested FROM deployments WHERE id = \(deploymentID)", logger: logger
            ).firstRecord { try $0.decode(Int64.self) }
            return (cancelRequested ?? 0) != 0
        }
    }

    // appendEvent, saveManifests and finish are one statement each (one round trip, its own transaction):
    // the lease's row is locked (or updated) in a CTE and the write reads from it, so it lands only
    // while the lease is held, as BEGIN, SELECT ... FOR UPDATE, the write and COMMIT did in four.

    public func appendEvent(_ claim: Claim, _ event: NewEvent) async throws -> Bool {
        try await metrics.measure("queue.event") { [self] in
            let event = EventInsert(claim, event)
            return try await client.query(
                """
                WITH held AS (
                    SELECT seq FROM deployments
                    WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND attempt = \(claim.attempt) AND status = 'running'
                    FOR UPDATE
                )
                \(insertEvent: event, from: "held")
                RETURNING deployment_id
                """, logger: logger
            ).firstRecord { try $0.decode(String.self) } != nil
        }
    }

    public func saveManifests(_ claim: Claim, compose: String, kubernetes: String, at now: Date) async throws -> Bool {
        try await metrics.measure("queue.manifests") { [self] in
            try await client.query(
                """
                WITH held AS (
                    SELECT seq FROM deployments
                    WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND attempt = \(claim.attempt) AND status = 'running'
                    FOR UPDATE
                )
                INSERT INTO deployment_manifests (deployment_id, attempt, rendered_at, compose, kubernetes)
                SELECT \(claim.deployment.id), \(claim.attempt), \(now.millisecondsSinceEpoch), \(compose), \(kubernetes)
                FROM held
                ON CONFLICT (deployment_id) DO UPDATE SET attempt = excluded.attempt, rendered_at = excluded.rendered_at,
                    compose = excluded.compose, kubernetes = excluded.kubernetes
                RETURNING deployment_id
                """, logger: logger
            ).firstRecord { try $0.decode(String.self) } != nil
        }
    }

    public func finish(_ claim: Claim, status: DeploymentStatus, error: String?, event: NewEvent) async throws -> Bool {
        try status.requireTerminal()
        return try await metrics.measure("queue.finish") { [self] in
            let at = event.at.millisecondsSinceEpoch
            let event = EventInsert(claim, event)
            return try await client.query(
                """
                WITH finished AS (
                    UPDATE deployments SET status = \(status.rawValue), error = \(error), finished_at = \(at), updated_at = \(at),
                        lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND attempt = \(claim.attempt) AND status = 'running'
                    RETURNING id
                )
                \(insertEvent: event, from: "finished")
                RETURNING deployment_id
                """, logger: logger
            ).firstRecord { try $0.decode(String.self) } != nil
        }
    }

    public func release(_ claim: Claim, event: NewEvent, afterFailure: Bool) async throws -> Bool {
        try await metrics.measure("queue.release") { [self] in
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
                try await connection.insertEvent(EventInsert(claim, event), logger: logger)
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
