import CodeDomain
import CoreMetrics
import Foundation
import Metrics
import NIOConcurrencyHelpers

/// The store: every repository, written once against `SQLDatabase` and run unchanged on SQLite and
/// PostgreSQL.
///
/// State changes a worker makes are guarded updates (`WHERE lease_owner = ? AND status = 'running'`),
/// so a worker that lost its lease changes nothing; events and manifests are written in the same
/// transaction as, and only if, the guarded statement matched.
public final class SQLStore: Store {
    public let database: any SQLDatabase
    private let metricsFactory: (any MetricsFactory)?
    /// One timer per operation: creating one looks it up in the metrics factory, on every query.
    private let timers = NIOLockedValueBox<[String: Metrics.Timer]>([:])

    public init(database: any SQLDatabase, metricsFactory: (any MetricsFactory)? = nil) {
        self.database = database
        self.metricsFactory = metricsFactory
    }

    public var backend: String { database.dialect.name }
    private var dialect: SQLDialect { database.dialect }

    public func migrate() async throws {
        try await database.migrate()
    }

    public func ping() async throws {
        _ = try await database.query(SQLStatement("SELECT 1 AS one"))
    }

    // MARK: Deployments

    public func createDeployment(_ new: NewDeployment) async throws -> CreateOutcome {
        try await timed("deployment.create") {
            let spec = new.spec
            let insert = SQLStatement(
                """
                INSERT INTO deployments (id, service, image, image_registry, image_repository, image_tag, image_digest,
                    environment, strategy, replicas, health_url, labels, status, attempt, cancel_requested,
                    created_by, idempotency_key, request_hash, created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, 0, ?, ?, ?, ?, ?)
                ON CONFLICT (created_by, idempotency_key) DO NOTHING
                RETURNING *
                """,
                [
                    .text(new.id), .text(spec.service), .text(spec.imageText), .text(spec.image.registry),
                    .text(spec.image.repository), SQLValue(spec.image.tag), SQLValue(spec.image.digest),
                    .text(spec.environment.rawValue), .text(spec.strategy.rawValue), SQLValue(spec.replicas),
                    SQLValue(spec.healthURL), .text(try Self.encodeLabels(spec.labels)), SQLValue(new.createdBy),
                    SQLValue(new.idempotencyKey), SQLValue(new.requestHash), SQLValue(new.createdAt), SQLValue(new.createdAt),
                ]
            )
            var steps = [
                SQLStep(insert),
                SQLStep(
                    Self.insertEvent(
                        deploymentID: new.id, attempt: 0, workerID: nil,
                        NewEvent(at: new.createdAt, step: "queue", kind: .info, message: "queued by \(new.createdBy ?? "an unknown key")")
                    ),
                    .ifRows(from: 0)
                ),
            ]
            if let notification = dialect.queuedNotification {
                steps.append(SQLStep(notification(new.id), .ifRows(from: 0)))
            }
            let results = try await database.transaction(steps)
            if let row = results[0].first {
                return .created(try Self.deployment(row))
            }
            // The key was used before: the same request gets the same deployment, another one a conflict.
            let existing = try await database.query(SQLStatement(
                "SELECT * FROM deployments WHERE created_by = ? AND idempotency_key = ?",
                [SQLValue(new.createdBy), SQLValue(new.idempotencyKey)]
            ))
            guard let row = existing.first else { throw StoreError.conflict("idempotent insert matched no row") }
            let deployment = try Self.deployment(row)
            guard try row.optionalText("request_hash") == new.requestHash else {
                throw StoreError.idempotencyMismatch(existingID: deployment.id)
            }
            return .replayed(deployment)
        }
    }

    public func deployment(id: String) async throws -> Deployment? {
        try await timed("deployment.get") {
            try await database.query(SQLStatement("SELECT * FROM deployments WHERE id = ?", [.text(id)]))
                .first.map(Self.deployment)
        }
    }

    public func deployments(matching filter: DeploymentFilter) async throws -> StorePage<Deployment> {
        try await timed("deployment.list") {
            var conditions: [String] = []
            var values: [SQLValue] = []
            if let status = filter.status {
                conditions.append("status = ?")
                values.append(.text(status.rawValue))
            }
            if let service = filter.service {
                conditions.append("service = ?")
                values.append(.text(service))
            }
            if let environment = filter.environment {
                conditions.append("environment = ?")
                values.append(.text(environment.rawValue))
            }
            if let before = filter.before {
                conditions.append("seq < ?")
                values.append(.integer(before))
            }
            let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            return try await page(
                SQLStatement("SELECT * FROM deployments \(whereClause) ORDER BY seq DESC LIMIT ?", values + [SQLValue(filter.limit + 1)]),
                limit: filter.limit,
                decode: Self.deployment
            )
        }
    }

    public func cancelDeployment(id: String, by keyID: String?, at now: Date) async throws -> CancelOutcome {
        try await timed("deployment.cancel") {
            let who = keyID ?? "an unknown key"
            let results = try await database.transaction([
                // 0: queued -> cancelled, at once.
                SQLStep(SQLStatement(
                    """
                    UPDATE deployments SET status = 'cancelled', error = 'cancelled before a worker started it',
                        finished_at = ?, updated_at = ? WHERE id = ? AND status = 'queued' RETURNING *
                    """,
                    [SQLValue(now), SQLValue(now), .text(id)]
                )),
                SQLStep(
                    Self.insertEvent(deploymentID: id, attempt: 0, workerID: nil, NewEvent(at: now, step: "cancel", kind: .info, outcome: .cancelled, message: "cancelled by \(who) while queued")),
                    .ifRows(from: 0)
                ),
                // 2: running -> cancel requested; the worker stops at its next step boundary or wait.
                SQLStep(
                    SQLStatement(
                        "UPDATE deployments SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status = 'running' RETURNING *",
                        [SQLValue(now), .text(id)]
                    ),
                    .ifNoRows(from: 0)
                ),
                SQLStep(
                    SQLStatement(
                        """
                        INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, message)
                        SELECT id, ?, attempt, NULL, 'cancel', 'info', NULL, NULL, ? FROM deployments WHERE id = ?
                        """,
                        [SQLValue(now), .text("cancellation requested by \(who)"), .text(id)]
                    ),
                    .ifRows(from: 2)
                ),
            ])
            if let row = results[0].first { return .cancelled(try Self.deployment(row)) }
            if let row = results[2].first { return .cancelRequested(try Self.deployment(row)) }
            guard let current = try await deployment(id: id) else { throw StoreError.notFound }
            throw StoreError.conflict("deployment \(id) already ended with status \(current.status.rawValue)")
        }
    }

    public func events(deploymentID: String, after: Int64?, limit: Int) async throws -> StorePage<DeploymentEvent> {
        try await timed("event.list") {
            let rows = try await database.query(SQLStatement(
                "SELECT * FROM deployment_events WHERE deployment_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                [.text(deploymentID), .integer(after ?? 0), SQLValue(limit + 1)]
            ))
            let items = try rows.prefix(limit).map(Self.event)
            return StorePage(items: items, next: rows.count > limit ? items.last?.sequence : nil)
        }
    }

    public func manifests(deploymentID: String) async throws -> DeploymentManifests? {
        try await timed("manifest.get") {
            try await database.query(SQLStatement("SELECT * FROM deployment_manifests WHERE deployment_id = ?", [.text(deploymentID)]))
                .first.map { row in
                    DeploymentManifests(
                        deploymentID: try row.text("deployment_id"), attempt: try row.int("attempt"),
                        renderedAt: try row.date("rendered_at"), compose: try row.text("compose"), kubernetes: try row.text("kubernetes")
                    )
                }
        }
    }

    // MARK: API keys

    public func createKey(_ key: NewAPIKey) async throws -> APIKey {
        try await timed("key.create") {
            let rows = try await database.query(Self.insertKey(key, onConflict: ""))
            guard let row = rows.first else { throw StoreError.conflict("key was not created") }
            return try Self.apiKey(row)
        }
    }

    public func ensureKey(_ key: NewAPIKey) async throws -> APIKey {
        try await timed("key.ensure") {
            if let row = try await database.query(Self.insertKey(key, onConflict: "ON CONFLICT (secret_hash) DO NOTHING")).first {
                return try Self.apiKey(row)
            }
            guard let existing = try await self.key(secretHash: key.secretHash) else {
                throw StoreError.conflict("key with this secret vanished while it was ensured")
            }
            return existing.key
        }
    }

    public func key(secretHash: String) async throws -> StoredAPIKey? {
        try await timed("key.lookup") {
            try await database.query(SQLStatement("SELECT * FROM api_keys WHERE secret_hash = ?", [.text(secretHash)]))
                .first.map { StoredAPIKey(key: try Self.apiKey($0), secretHash: try $0.text("secret_hash")) }
        }
    }

    public func keys(limit: Int, before: Int64?) async throws -> StorePage<APIKey> {
        try await timed("key.list") {
            try await page(
                SQLStatement(
                    "SELECT * FROM api_keys WHERE seq < ? ORDER BY seq DESC LIMIT ?",
                    [.integer(before ?? Int64.max), SQLValue(limit + 1)]
                ),
                limit: limit,
                decode: Self.apiKey
            )
        }
    }

    public func revokeKey(id: String, at now: Date) async throws -> APIKey? {
        try await timed("key.revoke") {
            if let row = try await database.query(SQLStatement(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING *",
                [SQLValue(now), .text(id)]
            )).first {
                return try Self.apiKey(row)
            }
            return try await database.query(SQLStatement("SELECT * FROM api_keys WHERE id = ?", [.text(id)])).first.map(Self.apiKey)
        }
    }

    public func recordKeyUse(id: String, at now: Date) async throws {
        try await timed("key.touch") {
            _ = try await database.query(SQLStatement("UPDATE api_keys SET last_used_at = ? WHERE id = ?", [SQLValue(now), .text(id)]))
        }
    }

    // MARK: Audit

    public func recordAudit(_ entry: NewAuditEntry) async throws {
        try await timed("audit.record") {
            _ = try await database.query(SQLStatement(
                """
                INSERT INTO audit_log (at, key_id, action, target, outcome, status, request_id, method, path)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    SQLValue(entry.at), SQLValue(entry.keyID), .text(entry.action), SQLValue(entry.target), .text(entry.outcome),
                    SQLValue(entry.status), SQLValue(entry.requestID), .text(entry.method), .text(entry.path),
                ]
            ))
        }
    }

    public func auditEntries(limit: Int, before: Int64?) async throws -> StorePage<AuditEntry> {
        try await timed("audit.list") {
            try await page(
                SQLStatement("SELECT * FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?", [.integer(before ?? Int64.max), SQLValue(limit + 1)]),
                limit: limit
            ) { row in
                AuditEntry(
                    sequence: try row.integer("seq"), at: try row.date("at"), keyID: try row.optionalText("key_id"),
                    action: try row.text("action"), target: try row.optionalText("target"), outcome: try row.text("outcome"),
                    status: try row.int("status"), requestID: try row.optionalText("request_id"), method: try row.text("method"),
                    path: try row.text("path")
                )
            }
        }
    }

    // MARK: Work queue

    public func claimNext(worker: String, now: Date, leaseDuration: Duration, maxAttempts: Int) async throws -> Claim? {
        try await timed("queue.claim") {
            let expires = now.addingTimeInterval(leaseDuration.seconds)
            let claimable = "status = 'queued' OR (status = 'running' AND lease_expires_at < ? AND attempt < ?)"
            let claimableValues = [SQLValue(now), SQLValue(maxAttempts)]
            guard try await exists(where: claimable, claimableValues) else { return nil }
            // One statement, so the choice and the claim are atomic: PostgreSQL skips rows other workers
            // are claiming; SQLite serializes writers on its write lock.
            let rows = try await database.query(SQLStatement(
                """
                UPDATE deployments SET status = 'running', lease_owner = ?, lease_expires_at = ?, attempt = attempt + 1,
                    started_at = COALESCE(started_at, ?), updated_at = ?
                WHERE seq = (
                    SELECT seq FROM deployments WHERE \(claimable) ORDER BY seq LIMIT 1\(dialect.skipLocked)
                )
                RETURNING *
                """,
                [.text(worker), SQLValue(expires), SQLValue(now), SQLValue(now)] + claimableValues
            ))
            return try rows.first.map { Claim(deployment: try Self.deployment($0), owner: worker) }
        }
    }

    public func failExhausted(now: Date, maxAttempts: Int) async throws -> [String] {
        try await timed("queue.fail_exhausted") {
            let predicate = "status = 'running' AND lease_expires_at < ? AND attempt >= ?"
            let values = [SQLValue(now), SQLValue(maxAttempts)]
            let reason = "gave up after \(maxAttempts) attempts: the lease of the last worker expired before it finished"
            guard try await exists(where: predicate, values) else { return [] }
            let results = try await database.transaction([
                SQLStep(SQLStatement("SELECT seq FROM deployments WHERE \(predicate)\(dialect.forUpdate)", values)),
                SQLStep(
                    SQLStatement(
                        """
                        INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, message)
                        SELECT id, ?, attempt, lease_owner, 'lease', 'finished', 'failed', NULL, ? FROM deployments WHERE \(predicate)
                        """,
                        [SQLValue(now), .text(reason)] + values
                    ),
                    .ifRows(from: 0)
                ),
                SQLStep(
                    SQLStatement(
                        """
                        UPDATE deployments SET status = 'failed', error = ?, finished_at = ?, updated_at = ?,
                            lease_owner = NULL, lease_expires_at = NULL
                        WHERE \(predicate) RETURNING id
                        """,
                        [.text(reason), SQLValue(now), SQLValue(now)] + values
                    ),
                    .ifRows(from: 0)
                ),
            ])
            return try results[2].map { try $0.text("id") }
        }
    }

    public func renewLease(_ claim: Claim, now: Date, leaseDuration: Duration) async throws -> LeaseState {
        try await timed("queue.renew") {
            let rows = try await database.query(SQLStatement(
                """
                UPDATE deployments SET lease_expires_at = ?, updated_at = ?
                WHERE id = ? AND lease_owner = ? AND status = 'running' RETURNING cancel_requested
                """,
                [SQLValue(now.addingTimeInterval(leaseDuration.seconds)), SQLValue(now), .text(claim.deployment.id), .text(claim.owner)]
            ))
            guard let row = rows.first else { return .lost }
            return .held(cancelRequested: try row.bool("cancel_requested"))
        }
    }

    public func isCancelRequested(deploymentID: String) async throws -> Bool {
        try await timed("queue.cancel_requested") {
            let rows = try await database.query(SQLStatement("SELECT cancel_requested FROM deployments WHERE id = ?", [.text(deploymentID)]))
            return try rows.first?.bool("cancel_requested") ?? false
        }
    }

    public func appendEvent(_ claim: Claim, _ event: NewEvent) async throws -> Bool {
        try await timed("queue.event") {
            let results = try await database.transaction([
                lockIfHeld(claim),
                SQLStep(Self.insertEvent(deploymentID: claim.deployment.id, attempt: claim.attempt, workerID: claim.owner, event), .ifRows(from: 0)),
            ])
            return !results[0].isEmpty
        }
    }

    public func saveManifests(_ claim: Claim, compose: String, kubernetes: String, at now: Date) async throws -> Bool {
        try await timed("queue.manifests") {
            let results = try await database.transaction([
                lockIfHeld(claim),
                SQLStep(
                    SQLStatement(
                        """
                        INSERT INTO deployment_manifests (deployment_id, attempt, rendered_at, compose, kubernetes) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT (deployment_id) DO UPDATE SET attempt = excluded.attempt, rendered_at = excluded.rendered_at,
                            compose = excluded.compose, kubernetes = excluded.kubernetes
                        """,
                        [.text(claim.deployment.id), SQLValue(claim.attempt), SQLValue(now), .text(compose), .text(kubernetes)]
                    ),
                    .ifRows(from: 0)
                ),
            ])
            return !results[0].isEmpty
        }
    }

    public func finish(_ claim: Claim, status: DeploymentStatus, error: String?, event: NewEvent) async throws -> Bool {
        precondition(status.isTerminal, "finish needs a terminal status")
        return try await timed("queue.finish") {
            let results = try await database.transaction([
                SQLStep(SQLStatement(
                    """
                    UPDATE deployments SET status = ?, error = ?, finished_at = ?, updated_at = ?, lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = ? AND lease_owner = ? AND status = 'running' RETURNING id
                    """,
                    [.text(status.rawValue), SQLValue(error), SQLValue(event.at), SQLValue(event.at), .text(claim.deployment.id), .text(claim.owner)]
                )),
                SQLStep(Self.insertEvent(deploymentID: claim.deployment.id, attempt: claim.attempt, workerID: claim.owner, event), .ifRows(from: 0)),
            ])
            return !results[0].isEmpty
        }
    }

    public func release(_ claim: Claim, event: NewEvent) async throws -> Bool {
        try await timed("queue.release") {
            let results = try await database.transaction([
                SQLStep(SQLStatement(
                    """
                    UPDATE deployments SET status = 'queued', lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
                    WHERE id = ? AND lease_owner = ? AND status = 'running' RETURNING id
                    """,
                    [SQLValue(event.at), .text(claim.deployment.id), .text(claim.owner)]
                )),
                SQLStep(Self.insertEvent(deploymentID: claim.deployment.id, attempt: claim.attempt, workerID: claim.owner, event), .ifRows(from: 0)),
            ] + (dialect.queuedNotification.map { [SQLStep($0(claim.deployment.id), .ifRows(from: 0))] } ?? []))
            return !results[0].isEmpty
        }
    }

    public func queueDepth() async throws -> Int {
        try await timed("queue.depth") {
            let rows = try await database.query(SQLStatement("SELECT COUNT(*) AS n FROM deployments WHERE status = 'queued'"))
            return try rows.first?.int("n") ?? 0
        }
    }

    // MARK: Statements and rows

    /// Whether a deployment matches `predicate`. Workers ask what there is to claim or fail several times
    /// a second; a read first keeps the usual answer ("nothing") from taking SQLite's write lock, which
    /// every statement that writes holds for its whole transaction.
    private func exists(where predicate: String, _ values: [SQLValue]) async throws -> Bool {
        try await !database.query(SQLStatement("SELECT seq FROM deployments WHERE \(predicate) LIMIT 1", values)).isEmpty
    }

    /// Selects (and on PostgreSQL locks) the deployment if `claim` still holds its lease: the guard that
    /// later steps of the transaction depend on.
    private func lockIfHeld(_ claim: Claim) -> SQLStep {
        SQLStep(SQLStatement(
            "SELECT seq FROM deployments WHERE id = ? AND lease_owner = ? AND status = 'running'\(dialect.forUpdate)",
            [.text(claim.deployment.id), .text(claim.owner)]
        ))
    }

    static func insertEvent(deploymentID: String, attempt: Int, workerID: String?, _ event: NewEvent) -> SQLStatement {
        SQLStatement(
            """
            INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, message)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .text(deploymentID), SQLValue(event.at), SQLValue(attempt), SQLValue(workerID), .text(event.step),
                .text(event.kind.rawValue), SQLValue(event.outcome?.rawValue), SQLValue(event.durationMs), .text(event.message),
            ]
        )
    }

    static func insertKey(_ key: NewAPIKey, onConflict: String) -> SQLStatement {
        SQLStatement(
            """
            INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at, created_by)
            VALUES (?, ?, ?, ?, ?, ?, ?) \(onConflict) RETURNING *
            """,
            [
                .text(key.id), .text(key.name), .text(key.role.rawValue), .text(key.prefix), .text(key.secretHash),
                SQLValue(key.createdAt), SQLValue(key.createdBy),
            ]
        )
    }

    /// Runs a `LIMIT limit + 1` query: the extra row only says whether another page follows.
    private func page<Item>(_ statement: SQLStatement, limit: Int, decode: (SQLRow) throws -> Item) async throws -> StorePage<Item> {
        let rows = try await database.query(statement)
        let items = try rows.prefix(limit).map(decode)
        let next = rows.count > limit ? try rows[limit - 1].integer("seq") : nil
        return StorePage(items: items, next: next)
    }

    static func deployment(_ row: SQLRow) throws -> Deployment {
        func decoded<Value: RawRepresentable>(_ column: String, as type: Value.Type) throws -> Value where Value.RawValue == String {
            guard let value = Value(rawValue: try row.text(column)) else { throw StoreError.corruptRow("\(column) has an unknown value") }
            return value
        }
        return Deployment(
            id: try row.text("id"),
            service: try row.text("service"),
            image: try row.text("image"),
            imageRef: ImageReference(
                registry: try row.text("image_registry"), repository: try row.text("image_repository"),
                tag: try row.optionalText("image_tag"), digest: try row.optionalText("image_digest")
            ),
            environment: try decoded("environment", as: DeploymentEnvironment.self),
            strategy: try decoded("strategy", as: DeploymentStrategy.self),
            replicas: try row.int("replicas"),
            healthURL: try row.optionalText("health_url"),
            labels: try decodeLabels(try row.text("labels")),
            status: try decoded("status", as: DeploymentStatus.self),
            attempt: try row.int("attempt"),
            error: try row.optionalText("error"),
            cancelRequested: try row.bool("cancel_requested"),
            leaseOwner: try row.optionalText("lease_owner"),
            leaseExpiresAt: try row.optionalDate("lease_expires_at"),
            createdBy: try row.optionalText("created_by"),
            createdAt: try row.date("created_at"),
            updatedAt: try row.date("updated_at"),
            startedAt: try row.optionalDate("started_at"),
            finishedAt: try row.optionalDate("finished_at")
        )
    }

    static func event(_ row: SQLRow) throws -> DeploymentEvent {
        guard let kind = DeploymentEvent.Kind(rawValue: try row.text("kind")) else { throw StoreError.corruptRow("unknown event kind") }
        let outcome = try row.optionalText("outcome").map { text in
            guard let outcome = DeploymentEvent.Outcome(rawValue: text) else { throw StoreError.corruptRow("unknown event outcome") }
            return outcome
        }
        return DeploymentEvent(
            sequence: try row.integer("seq"), deploymentID: try row.text("deployment_id"), at: try row.date("at"),
            attempt: try row.int("attempt"), workerID: try row.optionalText("worker_id"), step: try row.text("step"),
            kind: kind, outcome: outcome, durationMs: try row.optionalInteger("duration_ms"), message: try row.text("message")
        )
    }

    static func apiKey(_ row: SQLRow) throws -> APIKey {
        guard let role = Role(rawValue: try row.text("role")) else { throw StoreError.corruptRow("unknown role") }
        return APIKey(
            id: try row.text("id"), name: try row.text("name"), role: role, prefix: try row.text("prefix"),
            createdAt: try row.date("created_at"), createdBy: try row.optionalText("created_by"),
            lastUsedAt: try row.optionalDate("last_used_at"), revokedAt: try row.optionalDate("revoked_at")
        )
    }

    static func encodeLabels(_ labels: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(labels), as: UTF8.self)
    }

    static func decodeLabels(_ text: String) throws -> [String: String] {
        try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
    }

    // MARK: Metrics

    /// Records `code_db_query_duration_seconds{operation,backend}` around a store operation.
    private func timed<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        guard let metricsFactory else { return try await body() }
        let backend = dialect.name
        let timer = timers.withLockedValue { timers in
            if let timer = timers[operation] { return timer }
            let timer = Metrics.Timer(label: "code_db_query_duration_seconds", dimensions: [("operation", operation), ("backend", backend)], factory: metricsFactory)
            timers[operation] = timer
            return timer
        }
        let start = ContinuousClock.now
        defer { timer.record(duration: ContinuousClock.now - start) }
        return try await body()
    }
}

extension Duration {
    var seconds: TimeInterval { self / .seconds(1) }
}
