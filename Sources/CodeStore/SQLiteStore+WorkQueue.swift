import CodeDomain
import Foundation
import GRDB

// A worker's changes are guarded: they land only while its lease is held (`lease_owner` and status
// `running`), inside one write transaction with whatever depends on the guard.
extension SQLiteStore: WorkQueue {
    public func claimNext(worker: String, now: Date, leaseDuration: Duration, maxAttempts: Int) async throws -> Claim? {
        try await metrics.measure("queue.claim") {
            let at = now.millisecondsSinceEpoch
            let expires = now.addingTimeInterval(leaseDuration.seconds).millisecondsSinceEpoch
            let claimable: SQL = "status = 'queued' OR (status = 'running' AND lease_expires_at < \(at) AND attempt < \(maxAttempts))"
            guard try await anyDeployment(where: claimable) else { return nil }
            // The choice and the claim are one statement under the write lock, so no two workers get the
            // same deployment.
            let claimed = try await pool.write { db in
                try SQLRequest<DeploymentRecord>(
                    literal: """
                        UPDATE deployments SET status = 'running', lease_owner = \(worker), lease_expires_at = \(expires),
                            attempt = attempt + 1, started_at = COALESCE(started_at, \(at)), updated_at = \(at)
                        WHERE seq = (SELECT seq FROM deployments WHERE \(claimable) ORDER BY seq LIMIT 1)
                        RETURNING \(sql: DeploymentRecord.columns)
                        """, cached: true
                ).fetchOne(db)
            }
            return try claimed.map { Claim(deployment: try $0.deployment(), owner: worker) }
        }
    }

    public func failExhausted(now: Date, maxAttempts: Int) async throws -> [String] {
        try await metrics.measure("queue.fail_exhausted") {
            let at = now.millisecondsSinceEpoch
            let exhausted: SQL = "status = 'running' AND lease_expires_at < \(at) AND attempt >= \(maxAttempts)"
            guard try await anyDeployment(where: exhausted) else { return [] }
            let reason = StoreEvents.exhaustedReason(maxAttempts: maxAttempts)
            return try await pool.write { db in
                let expired = try SQLRequest<ExhaustedLeaseRecord>(
                    literal: "SELECT \(sql: ExhaustedLeaseRecord.columns) FROM deployments WHERE \(exhausted) ORDER BY seq", cached: true
                ).fetchAll(db)
                for lease in expired {
                    try db.cachedStatement(
                        literal: """
                            UPDATE deployments SET status = 'failed', error = \(reason), finished_at = \(at), updated_at = \(at),
                                lease_owner = NULL, lease_expires_at = NULL
                            WHERE id = \(lease.id)
                            """
                    ).execute()
                    try db.insertEvent(StoreEvents.exhausted(lease, reason: reason, at: now))
                }
                return expired.map(\.id)
            }
        }
    }

    public func renewLease(_ claim: Claim, now: Date, leaseDuration: Duration) async throws -> LeaseState {
        try await metrics.measure("queue.renew") {
            let expires = now.addingTimeInterval(leaseDuration.seconds).millisecondsSinceEpoch
            let cancelRequested = try await pool.write { db in
                try SQLRequest<Int64>(
                    literal: """
                        UPDATE deployments SET lease_expires_at = \(expires), updated_at = \(now.millisecondsSinceEpoch)
                        WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
                        RETURNING cancel_requested
                        """, cached: true
                ).fetchOne(db)
            }
            return cancelRequested.map { .held(cancelRequested: $0 != 0) } ?? .lost
        }
    }

    public func isCancelRequested(deploymentID: String) async throws -> Bool {
        try await metrics.measure("queue.cancel_requested") {
            let cancelRequested = try await pool.read { db in
                try SQLRequest<Int64>(literal: "SELECT cancel_requested FROM deployments WHERE id = \(deploymentID)", cached: true)
                    .fetchOne(db)
            }
            return (cancelRequested ?? 0) != 0
        }
    }

    public func appendEvent(_ claim: Claim, _ event: NewEvent) async throws -> Bool {
        try await metrics.measure("queue.event") {
            try await pool.write { db in
                guard try db.leaseIsHeld(claim) else { return false }
                try db.insertEvent(EventInsert(claim, event))
                return true
            }
        }
    }

    public func saveManifests(_ claim: Claim, compose: String, kubernetes: String, at now: Date) async throws -> Bool {
        try await metrics.measure("queue.manifests") {
            try await pool.write { db in
                guard try db.leaseIsHeld(claim) else { return false }
                try db.cachedStatement(
                    literal: """
                        INSERT INTO deployment_manifests (deployment_id, attempt, rendered_at, compose, kubernetes)
                        VALUES (\(claim.deployment.id), \(claim.attempt), \(now.millisecondsSinceEpoch), \(compose), \(kubernetes))
                        ON CONFLICT (deployment_id) DO UPDATE SET attempt = excluded.attempt, rendered_at = excluded.rendered_at,
                            compose = excluded.compose, kubernetes = excluded.kubernetes
                        """
                ).execute()
                return true
            }
        }
    }

    public func finish(_ claim: Claim, status: DeploymentStatus, error: String?, event: NewEvent) async throws -> Bool {
        try status.requireTerminal()
        return try await metrics.measure("queue.finish") {
            let at = event.at.millisecondsSinceEpoch
            return try await pool.write { db in
                let finished = try SQLRequest<String>(
                    literal: """
                        UPDATE deployments SET status = \(status.rawValue), error = \(error), finished_at = \(at), updated_at = \(at),
                            lease_owner = NULL, lease_expires_at = NULL
                        WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
                        RETURNING id
                        """, cached: true
                ).fetchOne(db)
                guard finished != nil else { return false }
                try db.insertEvent(EventInsert(claim, event))
                return true
            }
        }
    }

    public func release(_ claim: Claim, event: NewEvent) async throws -> Bool {
        try await metrics.measure("queue.release") {
            try await pool.write { db in
                let released = try SQLRequest<String>(
                    literal: """
                        UPDATE deployments SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL,
                            updated_at = \(event.at.millisecondsSinceEpoch)
                        WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
                        RETURNING id
                        """, cached: true
                ).fetchOne(db)
                guard released != nil else { return false }
                try db.insertEvent(EventInsert(claim, event))
                return true
            }
        }
    }

    public func queueDepth() async throws -> Int {
        try await metrics.measure("queue.depth") {
            try await pool.read { db in
                try SQLRequest<Int>(literal: "SELECT COUNT(*) FROM deployments WHERE status = 'queued'", cached: true).fetchOne(db) ?? 0
            }
        }
    }

    /// Whether any deployment matches `predicate`. Workers ask what there is to claim or to fail several
    /// times a second; reading first keeps the usual answer ("nothing") from taking the write lock.
    private func anyDeployment(where predicate: SQL) async throws -> Bool {
        try await pool.read { db in
            try SQLRequest<Int64>(literal: "SELECT seq FROM deployments WHERE \(predicate) LIMIT 1", cached: true).fetchOne(db) != nil
        }
    }
}

extension Database {
    /// Whether `claim` still holds its lease. Inside a write transaction the answer stays true until it
    /// commits: the transaction holds the write lock, so no other worker can take the lease over meanwhile.
    func leaseIsHeld(_ claim: Claim) throws -> Bool {
        try SQLRequest<Int64>(
            literal: """
                SELECT seq FROM deployments WHERE id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND status = 'running'
                """, cached: true
        ).fetchOne(self) != nil
    }
}
