import CodeTestSupport
import Foundation
import GRDB
import GRDBSQLite
import Logging
import PostgresNIO
import Testing

@testable import CodeStore

/// Records read each column at its position (RecordColumns.swift). A row that did not come from a statement
/// selecting the record's `columns` must be refused as a corrupt row, never read into the wrong fields.
@Suite("Records read by column position", .timeLimit(.minutes(1)))
struct RecordColumnsTests {
    /// The columns the statements select are the keys in `allCases` order, and each key reads its own place:
    /// for every record, the name at a key's position in `columns` is the key's.
    @Test func eachKeyReadsItsPlaceInTheSelectedColumns() {
        func check<Record: ColumnRecord>(_: Record.Type, _ columns: String) {
            let names = columns.split(separator: ", ").map(String.init)
            #expect(names.count == Record.CodingKeys.columnCount, "\(Record.self)")
            for key in Record.CodingKeys.allCases {
                #expect(names[key.columnPosition] == key.stringValue, "\(Record.self).\(key.stringValue)")
            }
        }
        check(DeploymentRecord.self, DeploymentRecord.columns)
        check(EventRecord.self, EventRecord.columns)
        check(ManifestRecord.self, ManifestRecord.columns)
        check(ExhaustedLeaseRecord.self, ExhaustedLeaseRecord.columns)
        check(CancelledRecord.self, CancelledRecord.columns)
        check(APIKeyRecord.self, APIKeyRecord.columns)
        check(AuditRecord.self, AuditRecord.columns)
        #expect(CancelledRecord.columns == "id, attempt")
        #expect(DeploymentRecord.CodingKeys.leaseOwner.columnPosition == 17)
    }

    @Test func sqliteReadsTheSelectedColumnsAndRefusesOthers() throws {
        let queue = try DatabaseQueue()
        try queue.read { db in
            func cancelled(_ sql: String) throws -> CancelledRecord? { try SQLRequest<CancelledRecord>(sql: sql).fetchOne(db) }
            let read = try #require(try cancelled("SELECT 'dep_1' AS id, 2 AS attempt"))
            #expect(read.id == "dep_1" && read.attempt == 2)
            let tooFew = #expect(throws: StoreError.self) { try cancelled("SELECT 'dep_1' AS id") }
            #expect(tooFew?.description.contains("1 columns where 2 were expected") == true, "\(String(describing: tooFew))")
            #expect(throws: StoreError.self) { try cancelled("SELECT 'dep_1' AS id, 2 AS attempt, 3 AS failures") }
            // NULL into a field that is not optional: a corrupt row, not a crash or a default.
            let null = #expect(throws: StoreError.self) { try cancelled("SELECT 'dep_1' AS id, NULL AS attempt") }
            #expect(null?.description.contains("NULL in attempt") == true, "\(String(describing: null))")
            // NULL into an optional field reads as nil, beside values of the same types.
            let event = try #require(
                try SQLRequest<EventRecord>(
                    sql: """
                        SELECT 7 AS seq, 'dep_1' AS deployment_id, 5 AS at, 1 AS attempt, NULL AS worker_id, 'render' AS step,
                            'finished' AS kind, 'ok' AS outcome, NULL AS duration_ms, 'é' AS message
                        """
                ).fetchOne(db))
            #expect(event.seq == 7 && event.workerID == nil && event.outcome == "ok" && event.durationMs == nil && event.message == "é")
        }
    }

    /// Every row, in order, from a statement run again and again; and a statement left on a row by `fetchOne`
    /// is reset, so that it holds no read transaction (which would keep the WAL from being checkpointed).
    @Test func sqliteCursorReadsEveryRowAndResetsItsStatement() throws {
        let queue = try DatabaseQueue()
        try queue.read { db in
            let numbers =
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT 'dep_' || i AS id, i AS attempt FROM n"
            for count in [1, 3, 50] {
                let all = try SQLRequest<CancelledRecord>(sql: numbers, arguments: [count], cached: true).fetchAll(db)
                #expect(all.map(\.attempt) == Array(1...Int64(count)))
                #expect(all.map(\.id) == (1...count).map { "dep_\($0)" })
            }
            let statement = try db.cachedStatement(sql: numbers)
            let first = try CancelledRecord.fetchOne(statement, arguments: [5])
            #expect(first?.attempt == 1)
            #expect(sqlite3_stmt_busy(statement.sqliteStatement) == 0, "the statement was left on a row")
            #expect(try CancelledRecord.fetchOne(statement, arguments: [2])?.id == "dep_1")
        }
    }

    @Test(.enabled(if: TestBackend.available.contains(.postgres)))
    func postgresReadsTheSelectedColumnsAndRefusesOthers() async throws {
        try await withStore(.postgres) { store in
            let client = try #require(store as? PostgresStore).client
            let logger = Logger(label: "record-columns-test")
            func first(_ query: PostgresQuery) async throws -> CancelledRecord? {
                try await client.query(query, logger: logger).firstRecord(CancelledRecord.init)
            }
            let read = try #require(try await first("SELECT 'dep_1'::text AS id, 2::bigint AS attempt"))
            #expect(read.id == "dep_1" && read.attempt == 2)
            await #expect(throws: StoreError.self) { try await first("SELECT 'dep_1'::text AS id") }
            // The same number of columns in another order: PostgreSQL names them, so it is refused too.
            let swapped = await #expect(throws: StoreError.self) { try await first("SELECT 2::bigint AS attempt, 'dep_1'::text AS id") }
            #expect(swapped?.description.contains("column attempt where id was expected") == true, "\(String(describing: swapped))")
        }
    }
}
