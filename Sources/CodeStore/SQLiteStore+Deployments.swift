import CodeDomain
import Foundation
import GRDB

extension SQLiteStore: DeploymentRepository {
    public func createDeployment(_ new: NewDeployment) async throws -> CreateOutcome {
        try await metrics.measure("deployment.create") { [self] in
            let insert = try DeploymentInsert(new)
            let queued = StoreEvents.queued(new)
            let created = try await write { db -> DeploymentRecord? in
                // A known (created_by, idempotency_key) inserts nothing and returns no row.
                guard
                    let created = try DeploymentRecord.fetchOne(
                        db.cachedStatement(sql: Self.insertDeployment),
                        arguments: [
                            insert.id, insert.service, insert.image, insert.imageRegistry, insert.imageRepository, insert.imageTag,
                            insert.imageDigest, insert.environment, insert.strategy, insert.replicas, insert.healthURL, insert.labels,
                            insert.createdBy, insert.idempotencyKey, insert.requestHash, insert.createdAt, insert.createdAt,
                            insert.traceParent,
                        ])
                else { return nil }
                try db.insertEvent(queued)
                if let audit = new.audit { try db.insertAudit(audit) }
                return created
            }
            if let created { return .created(try created.deployment()) }
            let earlier = try read { db in
                try SQLRequest<DeploymentRecord>(
                    literal: """
                        SELECT \(sql: DeploymentRecord.columns) FROM deployments
                        WHERE created_by = \(new.createdBy) AND idempotency_key = \(new.idempotencyKey)
                        """, cached: true
                ).fetchOne(db)
            }
            guard let earlier else { throw StoreError.conflict("idempotent insert matched no row") }
            return try earlier.replay(of: new)
        }
    }

    private static let insertDeployment = """
        INSERT INTO deployments (id, service, image, image_registry, image_repository, image_tag, image_digest,
            environment, strategy, replicas, health_url, labels, status, attempt, cancel_requested,
            created_by, idempotency_key, request_hash, created_at, updated_at, trace_parent)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, 0, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (created_by, idempotency_key) DO NOTHING
        RETURNING \(DeploymentRecord.columns)
        """

    public func deployment(id: String) async throws -> Deployment? {
        try await metrics.measure("deployment.get") { [self] in
            try read { db in
                try DeploymentRecord.fetchOne(db.cachedStatement(sql: Self.deploymentByID), arguments: [id])
            }?.deployment()
        }
    }

    private static let deploymentByID = "SELECT \(DeploymentRecord.columns) FROM deployments WHERE id = ?"

    public func deployments(matching filter: DeploymentFilter) async throws -> StorePage<Deployment> {
        try await metrics.measure("deployment.list") { [self] in
            var conditions: [SQL] = []
            if let status = filter.status { conditions.append("status = \(status.rawValue)") }
            if let service = filter.service { conditions.append("service = \(service)") }
            if let environment = filter.environment { conditions.append("environment = \(environment.rawValue)") }
            if let before = filter.before { conditions.append("seq < \(before)") }
            let whereClause: SQL = conditions.isEmpty ? "" : "WHERE \(conditions.joined(separator: " AND "))"
            // At most 16 statement texts (one per combination of filters), so caching them is bounded.
            let rows = try read { db in
                try SQLRequest<DeploymentRecord>(
                    literal: """
                        SELECT \(sql: DeploymentRecord.columns) FROM deployments \(whereClause)
                        ORDER BY seq DESC LIMIT \(StorePage<Deployment>.rowLimit(filter.limit))
                        """, cached: true
                ).fetchAll(db)
            }
            return try StorePage(rows: rows, limit: filter.limit, position: \.seq) { try $0.deployment() }
        }
    }

    public func cancelDeployment(id: String, by keyID: String?, at now: Date) async throws -> CancelOutcome {
        try await metrics.measure("deployment.cancel") { [self] in
            let at = now.millisecondsSinceEpoch
            let transition = try await write { db -> CancelTransition in
                if let cancelled = try SQLRequest<DeploymentRecord>(
                    literal: """
                        UPDATE deployments SET status = 'cancelled', error = 'cancelled before a worker started it',
                            finished_at = \(at), updated_at = \(at)
                        WHERE id = \(id) AND status = 'queued'
                        RETURNING \(sql: DeploymentRecord.columns)
                        """, cached: true
                ).fetchOne(db) {
                    try db.insertEvent(StoreEvents.cancelledWhileQueued(id, by: keyID, at: now))
                    return .cancelled(cancelled)
                }
                // Running: the worker stops at its next step boundary or wait.
                if let running = try SQLRequest<DeploymentRecord>(
                    literal: """
                        UPDATE deployments SET cancel_requested = 1, updated_at = \(at)
                        WHERE id = \(id) AND status = 'running'
                        RETURNING \(sql: DeploymentRecord.columns)
                        """, cached: true
                ).fetchOne(db) {
                    try db.insertEvent(StoreEvents.cancellationRequested(running, by: keyID, at: now))
                    return .cancelRequested(running)
                }
                let status = try SQLRequest<String>(literal: "SELECT status FROM deployments WHERE id = \(id)", cached: true).fetchOne(db)
                return status.map { .alreadyEnded(status: $0) } ?? .notFound
            }
            return try transition.outcome(deploymentID: id)
        }
    }

    public func events(deploymentID: String, after: Int64?, limit: Int) async throws -> StorePage<DeploymentEvent> {
        try await metrics.measure("event.list") { [self] in
            let rows = try read { db in
                try SQLRequest<EventRecord>(
                    literal: """
                        SELECT \(sql: EventRecord.columns) FROM deployment_events
                        WHERE deployment_id = \(deploymentID) AND seq > \(after ?? 0)
                        ORDER BY seq LIMIT \(StorePage<DeploymentEvent>.rowLimit(limit))
                        """, cached: true
                ).fetchAll(db)
            }
            return try StorePage(rows: rows, limit: limit, position: \.seq) { try $0.event() }
        }
    }

    public func manifests(deploymentID: String) async throws -> DeploymentManifests? {
        try await metrics.measure("manifest.get") { [self] in
            try read { db in
                try SQLRequest<ManifestRecord>(
                    literal: "SELECT \(sql: ManifestRecord.columns) FROM deployment_manifests WHERE deployment_id = \(deploymentID)",
                    cached: true
                ).fetchOne(db)
            }?.manifests
        }
    }
}
