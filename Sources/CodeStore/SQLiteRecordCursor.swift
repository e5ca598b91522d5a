import GRDB
import GRDBSQLite

/// Records read from an SQLite statement one step at a time, each column straight from the statement at its
/// position (RecordColumns.swift).
///
/// Why not GRDB's `FetchableRecord`: its cursor, when it is made, builds a `Row` over the statement, and
/// with it a dictionary of the statement's lowercased column names (for `row["name"]`, which no record
/// here uses): for a deployment's 29 columns about 37,000 instructions per query, 5 % of a whole GET by id
/// (docs/performance.md, twenty-fifth round). This cursor is GRDB's own kind (`DatabaseCursor`, whose
/// `next()` steps the statement with the same checks around every step as GRDB's cursors), and the records
/// read the columns as GRDB's `StatementColumnConvertible` does. It implements the protocol's underscored
/// requirements (`_statement`, `_isDone`, `_element`), which GRDB's own cursors implement: public, but not
/// described for other code, so a GRDB release that changed them would stop this file compiling.
final class ColumnRecordCursor<Record: SQLiteRecord>: DatabaseCursor {
    typealias Element = Record

    let _statement: Statement
    var _isDone = false

    /// `statement` with its arguments bound (`setArguments` also resets it), as `SQLRequest` prepares it;
    /// only the `fetchOne` and `fetchAll` below make one, and each binds the statement first.
    /// A statement that does not select the record's number of columns is refused before its first step.
    fileprivate init(boundStatement statement: Statement) throws {
        try Record.CodingKeys.checkColumnCount(statement.columnCount)
        // The names, in debug builds only (the tests): a statement that selected the columns in another
        // order fails here. Read once per query, not per row.
        assert(
            statement.columnNames.elementsEqual(Record.CodingKeys.allCases.map(\.stringValue)),
            "columns \(statement.columnNames) where \(Record.CodingKeys.columnList) were expected")
        _statement = statement
    }

    /// A statement left on a row keeps its read transaction, and with it the WAL, open: reset it, as
    /// GRDB's cursors do when they end. An error of the last step is reported again by a reset; it was
    /// thrown by that step already.
    deinit {
        sqlite3_reset(_statement.sqliteStatement)
    }

    func _element(sqliteStatement: SQLiteStatement) throws -> Record {
        try Record(sqliteStatement: sqliteStatement)
    }
}

/// A record that can be read from the row an SQLite statement is on.
///
/// Why a protocol of its own: the cursor is generic and GRDB calls it through its protocol, so nothing in
/// it is compiled for one record. Each record's conformance below is, and its `init(sqliteStatement:)`,
/// the default one, is compiled for that record's columns. Calling the generic `init(columns:)` from the
/// cursor instead made the reading generic too (the type metadata looked up at run time, each column's
/// position searched for through generic equality): a list of 20 cost three times as many instructions.
protocol SQLiteRecord: ColumnRecord {
    init(sqliteStatement: SQLiteStatement) throws
}

extension SQLiteRecord {
    init(sqliteStatement: SQLiteStatement) throws {
        try self.init(columns: SQLiteColumns<CodingKeys>(statement: sqliteStatement))
    }
}

extension DeploymentRecord: SQLiteRecord {}
extension EventRecord: SQLiteRecord {}
extension ManifestRecord: SQLiteRecord {}
extension ExhaustedLeaseRecord: SQLiteRecord {}
extension CancelledRecord: SQLiteRecord {}
extension APIKeyRecord: SQLiteRecord {}
extension AuditRecord: SQLiteRecord {}

/// A statement's current row by a record's `CodingKeys`, each read at its column's position. NULL reads only
/// into an optional: into any other field it is a corrupt row, as is any row the record cannot be made from.
struct SQLiteColumns<Key: CodingKey & CaseIterable & Equatable>: RowColumns where Key.AllCases == [Key] {
    let statement: SQLiteStatement

    private func value<Value: StatementColumnConvertible>(_ key: Key) -> Value? {
        Value.fromStatement(statement, atUncheckedIndex: CInt(key.columnPosition))
    }

    private func required<Value: StatementColumnConvertible>(_ key: Key) throws -> Value {
        guard let value: Value = value(key) else { throw StoreError.corruptRow("NULL in \(key.stringValue)") }
        return value
    }

    func callAsFunction(_ key: Key) throws -> String { try required(key) }
    func callAsFunction(_ key: Key) throws -> String? { value(key) }
    func callAsFunction(_ key: Key) throws -> Int64 { try required(key) }
    func callAsFunction(_ key: Key) throws -> Int64? { value(key) }
}

extension SQLiteRecord {
    /// The first record `statement` selects with `arguments`, if any.
    static func fetchOne(_ statement: Statement, arguments: StatementArguments) throws -> Self? {
        try statement.setArguments(arguments)
        return try ColumnRecordCursor<Self>(boundStatement: statement).next()
    }
}

extension SQLRequest where RowDecoder: SQLiteRecord {
    /// The records the request selects.
    func fetchAll(_ db: Database) throws -> [RowDecoder] {
        try Array(cursor(db))
    }

    /// The first record the request selects, if any.
    func fetchOne(_ db: Database) throws -> RowDecoder? {
        try cursor(db).next()
    }

    private func cursor(_ db: Database) throws -> ColumnRecordCursor<RowDecoder> {
        let prepared = try makePreparedRequest(db)
        // A row adapter (which the store's requests never set) would move the columns the records read.
        assert(prepared.adapter == nil, "a record request with a row adapter")
        return try ColumnRecordCursor(boundStatement: prepared.statement)
    }
}
