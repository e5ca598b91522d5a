import CodeDomain
import Foundation
import GRDB

// A worker's changes are guarded: they land only while its lease is held (`lease_owner`, the claim's
// `attempt` as a fencing token, and status `running`), inside one write transaction with whatever depends
// on the guard. Lease times come from SQLite's clock, the one every process sharing the file reads.
extension SQLiteStore: WorkQueue {
    /// Now in milliseconds since the epoch, by the database (`julianday('now')` is stable within a statement).
    static let databaseNow = SQL(sql: databaseNowExpression)
    private static let databaseNowExpression = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)"

    /// Queued, or running with an expired lease: no worker holds it.
    private static let unheld = SQL(sql: WorkQueueSQL.unheld(now: databaseNowExpression))

    /// Unheld, and not failed or claimed too often.
    static func claimable(maxAttempts: Int) -> SQL { "\(unheld) AND \(sql: WorkQueueSQL.withinLimits(maxAttempts: maxAttempts))" }

    /// Unheld with a cancellation requested: whatever its attempts, it ends cancelled, never failed or run.
    static let cancelledWhileUnheld: SQL = "cancel_requested = 1 AND \(unheld)"

    /// Unheld, and claimable or to be cancelled: whether a claim has anything to do (`unheld` once, outside
    /// the OR: two lookups by status instead of four).
    static func claimableOrCancelled(maxAttempts: Int) -> SQL {
        "\(unheld) AND (\(sql: WorkQueueSQL.withinLimits(maxAttempts: maxAttempts)) OR cancel_requested = 1)"
    }

    /// The next deployment to claim: the oldest claimable one no cancellation was requested for.
    static func nextClaimable(maxAttempts: Int) -> SQL {
        "SELECT seq FROM deployments WHERE \(claimable(maxAttempts: maxAttempts)) AND cancel_requested = 0 ORDER BY seq LIMIT 1"
    }

    public func claimNext(worker: String, leaseDuration: Duration, maxAttempts: Int) async throws -> Claim? {
        try await metrics.measure("queue.claim") { [self] () -> Claim? in
            let now = Self.databaseNow
            guard try await anyDeployment(where: Self.claimableOrCancelled(maxAttempts: maxAttempts)) else { return nil }
            // The choice and the claim are one statement under the write lock, so no two workers get the
            // same deployment.
            let claimed = try await write { db -> DeploymentRecord? in
                // A cancellation requested while it ran (then released, or its lease expired) is final.
                let cancelled = try SQLRequest<CancelledRecord>(
                    literal: """
                        UPDATE deployments SET status = 'cancelled', error = \(StoreEvents.cancelledReason), finished_at = \(now),
                            updated_at = \(now), lease_owner = NULL, lease_expires_at = NULL
                        WHERE \(Self.cancelledWhileUnheld)
                        RETURNING \(sql: CancelledRecord.columns)
                        """, cached: true
                ).fetchAll(db)
                for record in cancelled {
                    try db.insertEvent(
                        StoreEvents.cancelledInsteadOfRun(record, at: Date(), by: worker, when: "before a worker ran it again"))
                }
                return try SQLRequest<DeploymentRecord>(
                    literal: """
                        UPDATE deployments SET status = 'running', lease_owner = \(worker),
                            lease_expires_at = \(now) + \(leaseDuration.wholeMilliseconds),
                            attempt = attempt + 1, releases = releases + (CASE WHEN status = 'running' THEN 1 ELSE 0 END),
                            started_at = COALESCE(started_at, \(now)), updated_at = \(now)
                        WHERE seq = (\(Self.nextClaimable(maxAttempts: maxAttempts)))
                        RETURNING \(sql: DeploymentRecord.columns)
                        """, cached: true
                ).fetchOne(db)
            }
            return try claimed.map { try $0.claim(by: worker) }
        }
    }

    public func failExhausted(maxAttempts: Int) async throws -> [String] {
        try await metrics.measure("queue.fail_exhausted") { [self] () -> [String] in
            let now = Self.databaseNow
            let exhausted = SQL(sql: WorkQueueSQL.exhausted(now: Self.databaseNowExpression, maxAttempts: maxAttempts))
            guard try await anyDeployment(where: exhausted) else { return [] }
            return try await write { db in
                let expired = try SQLRequest<ExhaustedLeaseRecord>(
                    literal: "SELECT \(sql: ExhaustedLeaseRecord.columns) FROM deployments WHERE \(exhausted) ORDER BY seq", cached: true
                ).fetchAll(db)
                for lease in expired {
                    let reason = StoreEvents.exhaustedReason(lease, maxAttempts: maxAttempts)
                    try db.cachedStatement(
                        literal: """
                            UPDATE deployments SET status = 'failed', error = \(reason), finished_at = \(now), updated_at = \(now),
                                lease_owner = NULL, lease_expires_at = NULL
                            WHERE id = \(lease.id)
                            """
                    ).execute()
                    try db.insertEvent(StoreEvents.exhausted(lease, reason: reason, at: Date()))
                }
                return expired.map(\.id)
            }
        }
    }

    public func renewLease(_ claim: Claim, leaseDuration: Duration) async throws -> LeaseState {
        try await metrics.measure("queue.renew") { [self] in
            let now = Self.databaseNow
            let cancelRequested = try await write { db in
                try SQLRequest<Int64>(
                    literal: """
                        UPDATE deployments SET lease_expires_at = \(now) + \(leaseDuration.wholeMilliseconds), updated_at = \(now)
                        WHERE \(Self.leaseHeld(claim))
                        RETURNING cancel_requested
                        """, cached: true
                ).fetchOne(db)
            }
            return cancelRequested.map { .held(cancelRequested: $0 != 0) } ?? .lost
        }
    }

    public func isCancelRequested(deploymentID: String) async throws -> Bool {
        try await metrics.measure("queue.cancel_requested") { [self] in
            let cancelRequested = try read { db in
                try SQLRequest<Int64>(literal: "SELECT cancel_requested FROM deployments WHERE id = \(deploymentID)", cached: true)
                    .fetchOne(db)
            }
            return (cancelRequested ?? 0) != 0
        }
    }

    public func appendEvents(_ claim: Claim, _ events: [NewEvent]) async throws -> Bool {
        precondition(!events.isEmpty, "appendEvents needs an event")
        return try await metrics.measure("queue.event") { [self] in
            try await write { db in
                guard try db.leaseIsHeld(claim) else { return false }
                for event in events { try db.insertEvent(EventInsert(claim, event)) }
                return true
            }
        }
    }

    public func saveManifests(
        _ claim: Claim, compose: String, kubernetes: String, at now: Date, events: [NewEvent]
    ) async throws -> Bool {
        try await metrics.measure("queue.manifests") { [self] in
            try await write { db in
                guard try db.leaseIsHeld(claim) else { return false }
                for event in events { try db.insertEvent(EventInsert(claim, event)) }
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

    public func finish(_ claim: Claim, status: DeploymentStatus, error: String?, events: [NewEvent]) async throws -> Bool {
        try status.requireTerminal()
        let at = events.finalEvent.at.millisecondsSinceEpoch
        return try await metrics.measure("queue.finish") { [self] in
            return try await write { db in
                let finished = try SQLRequest<String>(
                    literal: """
                        UPDATE deployments SET status = \(status.rawValue), error = \(error), finished_at = \(at), updated_at = \(at),
                            lease_owner = NULL, lease_expires_at = NULL
                        WHERE \(Self.leaseHeld(claim))
                        RETURNING id
                        """, cached: true
                ).fetchOne(db)
                guard finished != nil else { return false }
                for event in events { try db.insertEvent(EventInsert(claim, event)) }
                return true
            }
        }
    }

    public func release(_ claim: Claim, events: [NewEvent], afterFailure: Bool) async throws -> Bool {
        let event = events.finalEvent
        return try await metrics.measure("queue.release") { [self] in
            let at = event.at.millisecondsSinceEpoch
            let failure: Int64 = afterFailure ? 1 : 0
            return try await write { db in
                // With a cancellation requested, the deployment ends here: no other worker may roll it out.
                let status = try SQLRequest<String>(
                    literal: """
                        UPDATE deployments SET
                            status = CASE WHEN cancel_requested = 1 THEN 'cancelled' ELSE 'queued' END,
                            error = CASE WHEN cancel_requested = 1 THEN \(StoreEvents.cancelledReason) ELSE error END,
                            finished_at = CASE WHEN cancel_requested = 1 THEN \(at) ELSE NULL END,
                            failures = failures + \(failure), releases = releases + \(1 - failure),
                            lease_owner = NULL, lease_expires_at = NULL, updated_at = \(at)
                        WHERE \(Self.leaseHeld(claim))
                        RETURNING status
                        """, cached: true
                ).fetchOne(db)
                guard let status else { return false }
                for event in events { try db.insertEvent(EventInsert(claim, event)) }
                if status == DeploymentStatus.cancelled.rawValue {
                    try db.insertEvent(
                        StoreEvents.cancelledInsteadOfRun(
                            CancelledRecord(id: claim.deployment.id, attempt: Int64(claim.attempt)), at: event.at, by: claim.owner,
                            when: "when the worker gave it back"))
                }
                return true
            }
        }
    }

    public func queueStatus() async throws -> QueueStatus {
        try await metrics.measure("queue.depth") { [self] in
            try read { db in
                let row = try Row.fetchOne(
                    db,
                    SQLRequest<Row>(
                        literal: "SELECT COUNT(*), \(Self.databaseNow) - MIN(created_at) FROM deployments WHERE status = 'queued'",
                        cached: true))
                let waited: Int64? = row?[1]
                return QueueStatus(depth: row?[0] ?? 0, oldestAge: waited.map { .milliseconds(max(0, $0)) })
            }
        }
    }

    /// The guard of every change a worker makes: its lease, in this attempt, on a running deployment.
    static func leaseHeld(_ claim: Claim) -> SQL {
        "id = \(claim.deployment.id) AND lease_owner = \(claim.owner) AND attempt = \(claim.attempt) AND status = 'running'"
    }

    /// Whether any deployment matches `predicate`. Workers ask what there is to claim or to fail several
    /// times a second; reading first keeps the usual answer ("nothing") from taking the write lock.
    private func anyDeployment(where predicate: SQL) async throws -> Bool {
        try read { db in
            try SQLRequest<Int64>(literal: "SELECT seq FROM deployments WHERE \(predicate) LIMIT 1", cached: true).fetchOne(db) != nil
        }
    }
}

extension Database {
    /// Whether `claim` still holds its lease. Inside a write transaction the answer stays true until it
    /// commits: the transaction holds the write lock, so no other worker can take the lease over meanwhile.
    func leaseIsHeld(_ claim: Claim) throws -> Bool {
        try SQLRequest<Int64>(literal: "SELECT seq FROM deployments WHERE \(SQLiteStore.leaseHeld(claim))", cached: true).fetchOne(self)
            != nil
    }
}
