import PostgresNIO

// Rows as typed records. Statements select a record's `columns` (`SELECT \(unescaped: Record.columns)` or
// `RETURNING ...`), and the record reads each column by name, typed by the field it fills.

extension PostgresRowSequence {
    /// Every row, decoded by `decode`.
    func records<Record>(_ decode: (PostgresRow) throws -> Record) async throws -> [Record] {
        var records: [Record] = []
        for try await row in self {
            records.append(try decode(row))
        }
        return records
    }

    /// The first row, decoded, for statements that return at most one.
    func firstRecord<Record>(_ decode: (PostgresRow) throws -> Record) async throws -> Record? {
        try await records(decode).first
    }

    /// Reads the result to its end, for statements whose rows do not matter: an error the server reports
    /// while the statement runs surfaces here, not in a later statement.
    func drain() async throws {
        for try await _ in self {}
    }
}

/// A row's cells by a record's column names (its `CodingKeys`).
struct PostgresColumns<Key: CodingKey> {
    private let cells: PostgresRandomAccessRow

    init(_ row: PostgresRow) {
        cells = row.makeRandomAccess()
    }

    /// The column's value as `Value`; NULL decodes only into an optional. A column the statement did not
    /// select is a corrupt row, not a crash.
    func callAsFunction<Value: PostgresDecodable>(_ key: Key) throws -> Value {
        guard cells.contains(key.stringValue) else { throw StoreError.corruptRow("no column \(key.stringValue)") }
        return try cells[key.stringValue].decode(Value.self)
    }
}

extension DeploymentRecord {
    init(_ row: PostgresRow) throws {
        let column = PostgresColumns<CodingKeys>(row)
        try self.init(
            seq: column(.seq), id: column(.id), service: column(.service), image: column(.image),
            imageRegistry: column(.imageRegistry), imageRepository: column(.imageRepository), imageTag: column(.imageTag),
            imageDigest: column(.imageDigest), environment: column(.environment), strategy: column(.strategy),
            replicas: column(.replicas), healthURL: column(.healthURL), labels: column(.labels), status: column(.status),
            attempt: column(.attempt), error: column(.error), cancelRequested: column(.cancelRequested),
            leaseOwner: column(.leaseOwner), leaseExpiresAt: column(.leaseExpiresAt), createdBy: column(.createdBy),
            idempotencyKey: column(.idempotencyKey), requestHash: column(.requestHash), createdAt: column(.createdAt),
            updatedAt: column(.updatedAt), startedAt: column(.startedAt), finishedAt: column(.finishedAt),
            failures: column(.failures), releases: column(.releases), traceParent: column(.traceParent)
        )
    }
}

extension EventRecord {
    init(_ row: PostgresRow) throws {
        let column = PostgresColumns<CodingKeys>(row)
        try self.init(
            seq: column(.seq), deploymentID: column(.deploymentID), at: column(.at), attempt: column(.attempt),
            workerID: column(.workerID), step: column(.step), kind: column(.kind), outcome: column(.outcome),
            durationMs: column(.durationMs), message: column(.message)
        )
    }
}

extension ManifestRecord {
    init(_ row: PostgresRow) throws {
        let column = PostgresColumns<CodingKeys>(row)
        try self.init(
            deploymentID: column(.deploymentID), attempt: column(.attempt), renderedAt: column(.renderedAt),
            compose: column(.compose), kubernetes: column(.kubernetes)
        )
    }
}

extension ExhaustedLeaseRecord {
    init(_ row: PostgresRow) throws {
        let column = PostgresColumns<CodingKeys>(row)
        try self.init(id: column(.id), attempt: column(.attempt), failures: column(.failures), leaseOwner: column(.leaseOwner))
    }
}

extension CancelledRecord {
    init(_ row: PostgresRow) throws {
        let column = PostgresColumns<CodingKeys>(row)
        try self.init(id: column(.id), attempt: column(.attempt))
    }
}

extension APIKeyRecord {
    init(_ row: PostgresRow) throws {
        let column = PostgresColumns<CodingKeys>(row)
        try self.init(
            seq: column(.seq), id: column(.id), name: column(.name), role: column(.role), prefix: column(.prefix),
            secretHash: column(.secretHash), createdAt: column(.createdAt), createdBy: column(.createdBy),
            lastUsedAt: column(.lastUsedAt), revokedAt: column(.revokedAt)
        )
    }
}

extension AuditRecord {
    init(_ row: PostgresRow) throws {
        let column = PostgresColumns<CodingKeys>(row)
        try self.init(
            seq: column(.seq), at: column(.at), keyID: column(.keyID), action: column(.action), target: column(.target),
            outcome: column(.outcome), status: column(.status), requestID: column(.requestID), method: column(.method),
            path: column(.path), client: column(.client)
        )
    }
}
