import Foundation

/// The small SQL surface the store needs, implemented once for SQLite (GRDB) and once for PostgreSQL
/// (postgres-nio). All repository logic lives in `SQLStore` on top of it, so both backends run the same
/// queries and the same tests; what differs (placeholders, locking, notifications, DDL) is in the adapters
/// and in `SQLDialect`.
///
/// Statements use `?` placeholders; the PostgreSQL adapter numbers them.
public enum SQLValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    public init(_ value: String?) { self = value.map(SQLValue.text) ?? .null }
    public init(_ value: Int?) { self = value.map { .integer(Int64($0)) } ?? .null }
    public init(_ value: Int64?) { self = value.map(SQLValue.integer) ?? .null }
    /// Timestamps are stored as milliseconds since the Unix epoch in both backends: sortable, exact, and
    /// free of either database's time zone rules.
    public init(_ value: Date?) { self = value.map { .integer(SQLValue.milliseconds($0)) } ?? .null }

    public static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}

public struct SQLStatement: Sendable {
    public let sql: String
    public let values: [SQLValue]

    public init(_ sql: String, _ values: [SQLValue] = []) {
        self.sql = sql
        self.values = values
    }

    var isReadOnly: Bool {
        sql.drop(while: { $0.isWhitespace }).prefix(6).uppercased() == "SELECT"
    }
}

/// A result row by column name.
public struct SQLRow: Sendable {
    public let values: [String: SQLValue]

    public init(_ values: [String: SQLValue]) { self.values = values }

    public func value(_ column: String) throws -> SQLValue {
        guard let value = values[column] else { throw StoreError.corruptRow("missing column \(column)") }
        return value
    }

    public func text(_ column: String) throws -> String {
        guard case .text(let text) = try value(column) else { throw StoreError.corruptRow("\(column) is not text") }
        return text
    }

    public func optionalText(_ column: String) throws -> String? {
        switch try value(column) {
        case .null: nil
        case .text(let text): text
        default: throw StoreError.corruptRow("\(column) is not text")
        }
    }

    public func integer(_ column: String) throws -> Int64 {
        switch try value(column) {
        case .integer(let value): return value
        case .real(let value) where value.rounded() == value: return Int64(value)
        default: throw StoreError.corruptRow("\(column) is not an integer")
        }
    }

    public func optionalInteger(_ column: String) throws -> Int64? {
        if case .null = try value(column) { return nil }
        return try integer(column)
    }

    public func int(_ column: String) throws -> Int { Int(try integer(column)) }

    public func bool(_ column: String) throws -> Bool { try integer(column) != 0 }

    public func date(_ column: String) throws -> Date {
        Date(timeIntervalSince1970: Double(try integer(column)) / 1000)
    }

    public func optionalDate(_ column: String) throws -> Date? {
        try optionalInteger(column).map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }
}

/// What differs between the two databases in the statements `SQLStore` writes.
public struct SQLDialect: Sendable {
    public let name: String
    /// Appended to the claim subquery: PostgreSQL lets concurrent workers skip rows another is claiming.
    /// SQLite needs nothing, because a write statement holds the database's single write lock.
    public let skipLocked: String
    /// Appended to a select that locks the rows a transaction is about to change. SQLite's transactions
    /// already hold the write lock from their start.
    public let forUpdate: String
    /// A statement that wakes listening workers when a deployment is queued, run in the creating
    /// transaction so that it is delivered on commit; nil where the backend has no notifications.
    public let queuedNotification: (@Sendable (_ deploymentID: String) -> SQLStatement)?

    public init(name: String, skipLocked: String, forUpdate: String, queuedNotification: (@Sendable (String) -> SQLStatement)?) {
        self.name = name
        self.skipLocked = skipLocked
        self.forUpdate = forUpdate
        self.queuedNotification = queuedNotification
    }
}

/// A statement of a transaction, optionally run only if an earlier statement returned rows (or none).
/// This is how the store makes a change conditional on a guarded update without leaving the database,
/// which keeps transactions identical on both backends.
public struct SQLStep: Sendable {
    public enum Condition: Sendable {
        case always
        case ifRows(from: Int)
        case ifNoRows(from: Int)
    }

    public let statement: SQLStatement
    public let condition: Condition

    public init(_ statement: SQLStatement, _ condition: Condition = .always) {
        self.statement = statement
        self.condition = condition
    }

    /// Whether to run, given the rows of the steps before (a skipped step counts as no rows).
    func shouldRun(after results: [[SQLRow]]) -> Bool {
        switch condition {
        case .always: true
        case .ifRows(let index): !results[index].isEmpty
        case .ifNoRows(let index): results[index].isEmpty
        }
    }
}

public protocol SQLDatabase: Sendable {
    var dialect: SQLDialect { get }
    /// Runs one statement; reads may run concurrently with writes.
    func query(_ statement: SQLStatement) async throws -> [SQLRow]
    /// Runs the steps in order in one transaction, returning each step's rows (empty when skipped).
    /// Any error rolls everything back. On SQLite the transaction holds the write lock from its start.
    func transaction(_ steps: [SQLStep]) async throws -> [[SQLRow]]
    /// Applies pending migrations; safe to call from several processes at once.
    func migrate() async throws
}

public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case corruptRow(String)
    case notFound
    case idempotencyMismatch(existingID: String)
    case conflict(String)
    case invalidDatabaseURL(String)

    public var description: String {
        switch self {
        case .corruptRow(let detail): "the database returned an unexpected row: \(detail)"
        case .notFound: "not found"
        case .idempotencyMismatch(let id): "idempotency key was used for a different request (deployment \(id))"
        case .conflict(let detail): detail
        case .invalidDatabaseURL(let detail): detail
        }
    }
}
