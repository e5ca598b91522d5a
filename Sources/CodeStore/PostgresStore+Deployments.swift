import CodeDomain
import Foundation
import PostgresNIO

extension PostgresStore: DeploymentRepository {
    public func createDeployment(_ new: NewDeployment) async throws -> CreateOutcome {
        try await metrics.measure("deployment.create") { [self] in
            let insert = try DeploymentInsert(new)
            let created = try await client.withTransaction(logger: logger) { connection -> DeploymentRecord? in
                // A known (created_by, idempotency_key) inserts nothing and returns no row.
                guard
                    let created = try await connection.query(
                        """
                        INSERT INTO deployments (id, service, image, image_registry, image_repository, image_tag, image_digest,
                            environment, strategy, replicas, health_url, labels, status, attempt, cancel_requested,
                            created_by, idempotency_key, request_hash, created_at, updated_at, trace_parent)
                        VALUES (\(insert.id), \(insert.service), \(insert.image), \(insert.imageRegistry), \(insert.imageRepository),
                            \(insert.imageTag), \(insert.imageDigest), \(insert.environment), \(insert.strategy), \(insert.replicas),
                            \(insert.healthURL), \(insert.labels), 'queued', 0, 0, \(insert.createdBy), \(insert.idempotencyKey),
                            \(insert.requestHash), \(insert.createdAt), \(insert.createdAt), \(insert.traceParent))
                        ON CONFLICT (created_by, idempotency_key) DO NOTHING
                        RETURNING \(unescaped: DeploymentRecord.columns)
                        """, logger: logger
                    ).firstRecord({ try DeploymentRecord($0) })
                else { return nil }
                try await connection.insertEvent(StoreEvents.queued(new), logger: logger)
                if let audit = new.audit { try await connection.query(.insertAudit(audit), logger: logger).drain() }
                try await connection.notifyQueued(created.id, logger: logger)
                return created
            }
            if let created { return .created(try created.deployment()) }
            let earlier = try await client.query(
                """
                SELECT \(unescaped: DeploymentRecord.columns) FROM deployments
                WHERE created_by = \(new.createdBy) AND idempotency_key = \(new.idempotencyKey)
                """, logger: logger
            ).firstRecord { try DeploymentRecord($0) }
            guard let earlier else { throw StoreError.conflict("idempotent insert matched no row") }
            return try earlier.replay(of: new)
        }
    }

    public func deployment(id: String) async throws -> Deployment? {
        try await metrics.measure("deployment.get") { [self] in
            try await client.query(
                "SELECT \(unescaped: DeploymentRecord.columns) FROM deployments WHERE id = \(id)", logger: logger
            ).firstRecord { try DeploymentRecord($0) }?.deployment()
        }
    }

    public func deployments(matching filter: DeploymentFilter) async throws -> StorePage<Deployment> {
        try await metrics.measure("deployment.list") { [self] in
            var query = PostgresQuery.StringInterpolation(literalCapacity: 256, interpolationCount: 5)
            query.appendLiteral("SELECT \(DeploymentRecord.columns) FROM deployments WHERE TRUE")
            if let status = filter.status {
                query.appendLiteral(" AND status = ")
                query.appendInterpolation(status.rawValue)
            }
            if let service = filter.service {
                query.appendLiteral(" AND service = ")
                query.appendInterpolation(service)
            }
            if let environment = filter.environment {
                query.appendLiteral(" AND environment = ")
                query.appendInterpolation(environment.rawValue)
            }
            if let before = filter.before {
                query.appendLiteral(" AND seq < ")
                query.appendInterpolation(before)
            }
            query.appendLiteral(" ORDER BY seq DESC LIMIT ")
            query.appendInterpolation(StorePage<Deployment>.rowLimit(filter.limit))
            let rows = try await client.query(PostgresQuery(stringInterpolation: query), logger: logger).records {
                try DeploymentRecord($0)
            }
            return try StorePage(rows: rows, limit: filter.limit, position: \.seq) { try $0.deployment() }
        }
    }

    public func cancelDeployment(id: String, by keyID: String?, at now: Date) async throws -> CancelOutcome {
        try await metrics.measure("deployment.cancel") { [self] in
            let at = now.millisecondsSinceEpoch
            let transition = try await client.withTransaction(logger: logger) { connection -> CancelTransition in
                if let cancelled = try await connection.query(
                    """
                    UPDATE deployments SET status = 'cancelled', error = 'cancelled before a worker started it',
                        finished_at = \(at), updated_at = \(at)
                    WHERE id = \(id) AND status = 'queued'
                    RETURNING \(unescaped: DeploymentRecord.columns)
                    """, logger: logger
                ).firstRecord({ try DeploymentRecord($0) }) {
                    try await connection.insertEvent(StoreEvents.cancelledWhileQueued(id, by: keyID, at: now), logger: logger)
                    return .cancelled(cancelled)
                }
                // Running: the worker stops at its next step boundary or wait.
                if let running = try await connection.query(
                    """
                    UPDATE deployments SET cancel_requested = 1, updated_at = \(at)
                    WHERE id = \(id) AND status = 'running'
                    RETURNING \(unescaped: DeploymentRecord.columns)
                    """, logger: logger
                ).firstRecord({ try DeploymentRecord($0) }) {
                    try await connection.insertEvent(StoreEvents.cancellationRequested(running, by: keyID, at: now), logger: logger)
                    return .cancelRequested(running)
                }
                let status = try await connection.query("SELECT status FROM deployments WHERE id = \(id)", logger: logger)
                    .firstRecord { try $0.decode(String.self) }
                return status.map { .alreadyEnded(status: $0) } ?? .notFound
            }
            return try transition.outcome(deploymentID: id)
        }
    }

    public func events(deploymentID: String, after: Int64?, limit: Int) async throws -> StorePage<DeploymentEvent> {
        try await metrics.measure("event.list") { [self] in
            let rows = try await client.query(
                """
                SELECT \(unescaped: EventRecord.columns) FROM deployment_events
                WHERE deployment_id = \(deploymentID) AND seq > \(after ?? 0)
                ORDER BY seq LIMIT \(StorePage<DeploymentEvent>.rowLimit(limit))
                """, logger: logger
            ).records { try EventRecord($0) }
            return try StorePage(rows: rows, limit: limit, position: \.seq) { try $0.event() }
        }
    }

    public func manifests(deploymentID: String) async throws -> DeploymentManifests? {
        try await metrics.measure("manifest.get") { [self] in
            try await client.query(
                "SELECT \(unescaped: ManifestRecord.columns) FROM deployment_manifests WHERE deployment_id = \(deploymentID)",
                logger: logger
            ).firstRecord { try ManifestRecord($0) }?.manifests
        }
    }
}
