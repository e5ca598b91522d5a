import PostgresNIO

// PostgreSQL's rows as typed records (RecordColumns.swift): statements select a record's `columns`
// (`SELECT \(unescaped: Record.columns)` or `RETURNING ...`), and the record reads each column at its position.

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

/// A row's cells by a record's `CodingKeys`, each read at its column's position (RecordColumns.swift).
struct PostgresColumns<Key: CodingKey & CaseIterable & Equatable>: RowColumns where Key.AllCases == [Key] {
    private let cells: PostgresRandomAccessRow

    /// A row with another number of columns than the record's did not select its `columns`.
    init(_ row: PostgresRow) throws {
        cells = row.makeRandomAccess()
        try Key.checkColumnCount(cells.count)
    }

    /// The column's value as `Value`; NULL decodes only into an optional. The server names each column, so
    /// a statement that selected the record's columns in another order is refused as a corrupt row too.
    func callAsFunction<Value: PostgresDecodable>(_ key: Key) throws -> Value {
        let cell = cells[key.columnPosition]
        guard cell.columnName == key.stringValue else {
            throw StoreError.corruptRow("column \(cell.columnName) where \(key.stringValue) was expected")
        }
        return try cell.decode(Value.self)
    }
}

extension ColumnRecord {
    /// The record in a row of a statement that selected its `columns`.
    init(_ row: PostgresRow) throws {
        try self.init(columns: PostgresColumns<CodingKeys>(row))
    }
}
