import CodeDomain
import Foundation
import Logging
import PostgresNIO

// A worker's changes are guarded: they land only while its lease is held (`lease_owner` and status
// `running`), inside one transaction with whatever depends on the guard.
extension PostgresStore: WorkQueue {
    public func claimNext(worker: String, now: Date, leaseDuration: Duration, maxAttempts: Int) async throws -> Claim? {
        try await metrics.measure("queue.claim") {
            let at = now.millisecondsSinceEpoch
            let expires = now.addingTimeInterval(leaseDuration.seconds).millisecondsSinceEpoch
            // One statement, so the choice and the claim are atomic; concurrent workers skip the rows
            // others are claiming instead of waiting for them. (Unlike SQLite, no read comes first: an
            // update that matches nothing takes no lock, so idle workers cost one statement a poll.)
            let claimed = try await client.query(
                """
                UPDATE deployments SET status = 'running', lease_owner = \(worker), lease_expires_at = \(expires),
                    attempt = attempt + 1, started_at = COALESCE(started_at, \(at)), updated_at = \(at)
                WHERE seq = (
                    SELECT seq FROM deployments
                    WHERE status = 'queued' OR (status = 'running' AND lease_expires_at < \(at) AND attempt < \(maxAttempts))
                    ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
                )
                RETURNING \(unescaped: DeploymentRecord.columns)
                """, logger: logger
            ).firstRecord { try DeploymentRecord($0) }
            return try claimed.map { Claim(deployment: try $0.deployment(), owner: worker) }
        }
    }

    public func failExhausted(now: Date, maxAttempts: Int) async throws -> [String] {
        try await metrics.measure("queue.fail_exhausted") {
            let at = now.millisecondsSinceEpoch
            let anyExhausted = try await client.query(
                """
                SELECT seq FROM deployments WHERE status = 'running' AND lease_expires_at < \(at) AND attempt >= \(maxAttempts) LIMIT 1
                """, logger: logger
            ).firstRecord { try $0.decode(Int64.self) }
            guard anyExhausted != nil else { return [] }
            let reason = StoreEvents.exhaustedReason(maxAttempts: maxAttempts)
            return try await client.withTransaction(logger: logger) { connection -> [String] in
                // Locked in one order (seq), so that two workers doing this at once cannot deadlock; the
                // second waits, then finds the rows failed and skips them.
                let expired = try await connection.query(
                    """
                    SELECT \(unescaped: ExhaustedLeaseRecord.columns) FROM deployments
                    WHERE status = 'running' AND lease_expires_at < \(at) AND attempt >= \(maxAttempts)
                    ORDER BY seq FOR UPDATE
                    """, logger: logger
                ).records { try ExhaustedLeaseRecord($0) }
                for lease in expired {
                    try await connection.query(
                        """
                        UPDATE deployments SET status = 'failed', error = \(reason), finished_at = \(at), updated_at = \(at),
                            lease_owner = NULL, lease_expires_at = NULL
                        WHERE id = \(lease.id)
                        """, logger: logger
                    ).drain()
                    try await connection.insertEvent(StoreEvents.exhausted(lease, reason: reason, at: now), logger: logger)
                }
                return expired.map(\.id)
            }
        }
    }

    public func renewLease(_ claim: Claim, now: Date, leaseDuration: Duration) async throws -> LeaseState {
        try await metrics.measure("queue.renew") {
            let expires = now.addingTimeInterval(leaseDuration.seconds).millisecondsSinceEpoch
            let cancelRequested = try await client.query(
                """
                UPDATE deployments SET lease_expires_at = \(expires), updated_at = \(now.millisecondsSinceEpoch)
                WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
                RETURNING cancel_requested
                """, logger: logger
            ).firstRecord { try $0.decode(Int64.self) }
            return cancelRequested.map { .held(cancelRequested: $0 != 0) } ?? .lost
        }
    }

    public func isCancelRequested(deploymentID: String) async throws -> Bool {
        try await metrics.measure("queue.cancel_requested") {
            let cancelRequested = try await client.query(
                "SELECT cancel_requested FROM deployments WHERE id = \(deploymentID)", logger: logger
            ).firstRecord { try $0.decode(Int64.self) }
            return (cancelRequested ?? 0) != 0
        }
    }

    public func appendEvent(_ claim: Claim, _ event: NewEvent) async throws -> Bool {
        try await metrics.measure("queue.event") {
            try await client.withTransaction(logger: logger) { connection in
                guard try await connection.lockLeaseIfHeld(claim, logger: logger) else { return false }
                try await connection.insertEvent(EventInsert(claim, event), logger: logger)
                return true
            }
        }
    }

    public func saveManifests(_ claim: Claim, compose: String, kubernetes: String, at now: Date) async throws -> Bool {
        try await metrics.measure("queue.manifests") {
            try await client.withTransaction(logger: logger) { connection in
                guard try await connection.lockLeaseIfHeld(claim, logger: logger) else { return false }
                try await connection.query(
                    """
                    INSERT INTO deployment_manifests (deployment_id, attempt, rendered_at, compose, kubernetes)
                    VALUES (\(claim.deployment.id), \(claim.attempt), \(now.millisecondsSinceEpoch), \(compose), \(kubernetes))
                    ON CONFLICT (deployment_id) DO UPDATE SET attempt = excluded.attempt, rendered_at = excluded.rendered_at,
                        compose = excluded.compose, kubernetes = excluded.kubernetes
                    """, logger: logger
                ).drain()
                return true
            }
        }
    }

    public func finish(_ claim: Claim, status: DeploymentStatus, error: String?, event: NewEvent) async throws -> Bool {
        try status.requireTerminal()
        return try await metrics.measure("queue.finish") {
            let at = event.at.millisecondsSinceEpoch
            return try await client.withTransaction(logger: logger) { connection in
                let finished = try await connection.query(
                    """
                    UPDATE deployments SET status = \(status.rawValue), error = \(error), finished_at = \(at), updated_at = \(at),
                        lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
                    RETURNING id
                    """, logger: logger
                ).firstRecord { try $0.decode(String.self) }
                guard finished != nil else { return false }
                try await connection.insertEvent(EventInsert(claim, event), logger: logger)
                return true
            }
        }
    }

    public func release(_ claim: Claim, event: NewEvent) async throws -> Bool {
        try await metrics.measure("queue.release") {
            try await client.withTransaction(logger: logger) { connection in
                let released = try await connection.query(
                    """
                    UPDATE deployments SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                        updated_at = \(event.at.millisecondsSinceEpoch)
                    WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
                    RETURNING id
                    """, logger: logger
                ).firstRecord { try $0.decode(String.self) }
                guard released != nil else { return false }
                try await connection.insertEvent(EventInsert(claim, event), logger: logger)
                // Queued again: a listening worker takes it at once.
                try await connection.notifyQueued(claim.deployment.id, logger: logger)
                return true
            }
        }
    }

    public func queueDepth() async throws -> Int {
        try await metrics.measure("queue.depth") {
            let depth = try await client.query("SELECT COUNT(*) FROM deployments WHERE status = 'queued'", logger: logger)
                .firstRecord { try $0.decode(Int64.self) }
            return Int(depth ?? 0)
        }
    }
}

extension PostgresConnection {
    /// Whether `claim` still holds its lease; if so, its row stays locked until the transaction ends, so
    /// no other worker can take the lease over before what depends on the guard is written.
    func lockLeaseIfHeld(_ claim: Claim, logger: Logger) async throws -> Bool {
        try await query(
            """
            SELECT seq FROM deployments WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
            FOR UPDATE
            """, logger: logger
        ).firstRecord { try $0.decode(Int64.self) } != nil
    }
}
