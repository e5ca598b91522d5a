import CodeTestSupport
import Foundation
import GRDB
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
            let read = try #require(try CancelledRecord.fetchOne(db, sql: "SELECT 'dep_1' AS id, 2 AS attempt"))
            #expect(read.id == "dep_1" && read.attempt == 2)
            let tooFew = #expect(throws: StoreError.self) { try CancelledRecord.fetchOne(db, sql: "SELECT 'dep_1' AS id") }
            #expect(tooFew?.description.contains("1 columns where 2 were expected") == true, "\(String(describing: tooFew))")
            #expect(throws: StoreError.self) { try CancelledRecord.fetchOne(db, sql: "SELECT 'dep_1' AS id, 2 AS attempt, 3 AS failures") }
            // NULL into a field that is not optional: GRDB's decoding error, not a crash or a default.
            #expect(throws: (any Error).self) { try CancelledRecord.fetchOne(db, sql: "SELECT 'dep_1' AS id, NULL AS attempt") }
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
