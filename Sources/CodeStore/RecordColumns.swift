// Records read from rows the same way on both backends: each record has one initializer,
// `init(columns:)`, that names its columns (its `CodingKeys`) and takes each value typed by the field it
// fills; PostgresColumns (PostgresRows.swift) and SQLiteColumns (SQLiteRecordCursor.swift) are the two ways
// to read a column.
//
// A column is read by its position, not looked up by name: every statement that reads a record selects
// (or returns) the record's `columns`, which are its `CodingKeys` in `allCases` order, so the key's place in
// `allCases` is its column's place in the row. GRDB's lookup by name (a lowercased dictionary per
// statement) was 7 % of a list request's CPU (docs/performance.md, twentieth round). A row of another
// width is refused on both backends; PostgreSQL also names each column, which is checked, while on SQLite a
// release build trusts `columns` for the order (debug builds, which run the tests, check each statement's
// names too).

/// A record that can be read from a row that holds its columns.
protocol ColumnRecord {
    associatedtype CodingKeys: CodingKey & CaseIterable & Equatable where CodingKeys.AllCases == [CodingKeys]
    init(columns: some RowColumns<CodingKeys>) throws
}

extension CaseIterable where Self: CodingKey & Equatable, AllCases == [Self] {
    /// What a statement that reads the record selects: the column names in `allCases` order, the order
    /// `columnPosition` reads them in.
    static var columnList: String { allCases.map(\.stringValue).joined(separator: ", ") }

    /// How many columns a row of the record holds.
    static var columnCount: Int { allCases.count }

    /// Refuses a row of `count` columns when the record has another number: it did not select `columnList`.
    static func checkColumnCount(_ count: Int) throws {
        guard count == columnCount else { throw StoreError.corruptRow("\(count) columns where \(columnCount) were expected") }
    }

    /// This key's column's position in a row of a statement that selected `columnList`.
    var columnPosition: Int {
        // A linear search over at most 29 cases, each compared as one byte: cheaper than hashing the name.
        Self.allCases.firstIndex(of: self)!
    }
}

/// One row's columns, with the value types the records use. NULL reads only into an optional; a row
/// with other columns than the record's, or a value of another type, is a corrupt row, not a crash.
protocol RowColumns<Key> {
    associatedtype Key: CodingKey
    func callAsFunction(_ key: Key) throws -> String
    func callAsFunction(_ key: Key) throws -> String?
    func callAsFunction(_ key: Key) throws -> Int64
    func callAsFunction(_ key: Key) throws -> Int64?
}

extension DeploymentRecord: ColumnRecord {
    init(columns column: some RowColumns<CodingKeys>) throws {
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

extension EventRecord: ColumnRecord {
    init(columns column: some RowColumns<CodingKeys>) throws {
        try self.init(
            seq: column(.seq), deploymentID: column(.deploymentID), at: column(.at), attempt: column(.attempt),
            workerID: column(.workerID), step: column(.step), kind: column(.kind), outcome: column(.outcome),
            durationMs: column(.durationMs), message: column(.message)
        )
    }
}

extension ManifestRecord: ColumnRecord {
    init(columns column: some RowColumns<CodingKeys>) throws {
        try self.init(
            deploymentID: column(.deploymentID), attempt: column(.attempt), renderedAt: column(.renderedAt),
            compose: column(.compose), kubernetes: column(.kubernetes)
        )
    }
}

extension ExhaustedLeaseRecord: ColumnRecord {
    init(columns column: some RowColumns<CodingKeys>) throws {
        try self.init(id: column(.id), attempt: column(.attempt), failures: column(.failures), leaseOwner: column(.leaseOwner))
    }
}

extension CancelledRecord: ColumnRecord {
    init(columns column: some RowColumns<CodingKeys>) throws {
        try self.init(id: column(.id), attempt: column(.attempt))
    }
}

extension APIKeyRecord: ColumnRecord {
    init(columns column: some RowColumns<CodingKeys>) throws {
        try self.init(
            seq: column(.seq), id: column(.id), name: column(.name), role: column(.role), prefix: column(.prefix),
            secretHash: column(.secretHash), createdAt: column(.createdAt), createdBy: column(.createdBy),
            lastUsedAt: column(.lastUsedAt), revokedAt: column(.revokedAt)
        )
    }
}

extension AuditRecord: ColumnRecord {
    init(columns column: some RowColumns<CodingKeys>) throws {
        try self.init(
            seq: column(.seq), at: column(.at), keyID: column(.keyID), action: column(.action), target: column(.target),
            outcome: column(.outcome), status: column(.status), requestID: column(.requestID), method: column(.method),
            path: column(.path), client: column(.client)
        )
    }
}
