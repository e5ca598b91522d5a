import PostgresNIO

// PostgreSQL's rows as typed records (RecordColumns.swift): statements select a record's `columns`
// (`SELECT \(unescaped: Record.columns)` or `RETURNING ...`), and the record reads each column by name.

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
struct PostgresColumns<Key: CodingKey>: RowColumns {
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

extension ColumnRecord {
    /// The record in a row of a statement that selected its `columns`.
    init(_ row: PostgresRow) throws {
        try self.init(columns: PostgresColumns<CodingKeys>(row))
    }
}
