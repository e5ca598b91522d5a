import Foundation
import GRDB

/// SQLite through GRDB: a `DatabasePool` in WAL mode (readers never block the writer), a busy timeout
/// so that several processes on one host can share the file, and GRDB's `DatabaseMigrator`.
public final class SQLiteDatabase: SQLDatabase {
    public let path: String
    let pool: DatabasePool

    public let dialect = SQLDialect(name: "sqlite", skipLocked: "", forUpdate: "", queuedNotification: nil)

    /// How long a writer waits for another process's write lock before failing with SQLITE_BUSY.
    public static let busyTimeout: TimeInterval = 10

    public init(path: String) throws {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(Self.busyTimeout)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // With WAL, NORMAL loses at most the last transactions on power loss, never consistency.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
    }

    public func query(_ statement: SQLStatement) async throws -> [SQLRow] {
        if statement.isReadOnly {
            return try await pool.read { db in try Self.run(statement, in: db) }
        }
        return try await pool.write { db in try Self.run(statement, in: db) }
    }

    public func transaction(_ steps: [SQLStep]) async throws -> [[SQLRow]] {
        try await pool.writeWithoutTransaction { db in
            var results: [[SQLRow]] = []
            // IMMEDIATE takes the write lock at BEGIN, so a transaction that reads then writes cannot
            // fail half-way because another process wrote in between.
            try db.inTransaction(.immediate) {
                for step in steps {
                    results.append(step.shouldRun(after: results) ? try Self.run(step.statement, in: db) : [])
                }
                return .commit
            }
            return results
        }
    }

    public func migrate() async throws {
        // GRDB's migrator reads the applied migrations before it takes the write lock, so two processes
        // starting together (api and worker) can both try to apply the same one. The loser's statement
        // fails; a second pass then sees the migration as applied.
        var attempt = 0
        while true {
            do {
                try Self.migrator.migrate(pool)
                return
            } catch is DatabaseError where attempt < 3 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
    }

    private static func run(_ statement: SQLStatement, in db: Database) throws -> [SQLRow] {
        let arguments = StatementArguments(statement.values.map(\.databaseValue))
        return try Row.fetchAll(db, sql: statement.sql, arguments: arguments).map { row in
            var values: [String: SQLValue] = [:]
            for (column, value) in row {
                values[column] = SQLValue(value)
            }
            return SQLRow(values)
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        for migration in SchemaMigrations.sqlite {
            migrator.registerMigration(migration.name) { db in
                try db.execute(sql: migration.sql)
            }
        }
        return migrator
    }
}

extension SQLValue {
    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let value): value.databaseValue
        case .real(let value): value.databaseValue
        case .text(let value): value.databaseValue
        }
    }

    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let integer): self = .integer(integer)
        case .double(let double): self = .real(double)
        case .string(let string): self = .text(string)
        case .blob(let data): self = .text(String(decoding: data, as: UTF8.self))
        }
    }
}
