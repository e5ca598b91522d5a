import CodeTestSupport
import Foundation
import GRDB
import Synchronization
import Testing

@testable import CodeStore

/// Group commit (SQLiteGroupCommit.swift): changes queued while a transaction is written share the next
/// one, each answered with its own result; when a change throws or the commit fails, each change is
/// written again alone, so that only the change that fails alone fails.
///
/// Each test holds GRDB's writer queue with a job that waits for the test, queues the changes it needs
/// behind it, and lets go once they all wait.
@Suite(.timeLimit(.minutes(1))) struct SQLiteGroupCommitTests {
    private struct RefusedChange: Error, Equatable {}

    private func withSQLiteStore(
        busyTimeout: TimeInterval = SQLiteStore.busyTimeout, _ body: (SQLiteStore) async throws -> Void
    ) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(
            path: directory.appendingPathComponent("code.db").path, metricsFactory: nil, readerCount: 4, busyTimeout: busyTimeout)
        try await store.migrate()
        try await store.write { db in
            try db.execute(sql: "CREATE TABLE numbers (n INTEGER NOT NULL UNIQUE)")
            // Checked at COMMIT, not at the statement: a change that breaks it makes the commit fail.
            try db.execute(sql: "CREATE TABLE parents (id INTEGER PRIMARY KEY)")
            try db.execute(
                sql: "CREATE TABLE children (parent INTEGER NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)")
        }
        try await body(store)
    }

    /// Runs `queued` (each a change for `store.write`) behind a job that holds GRDB's writer queue, outside
    /// any transaction, and answers their results in order once the job lets go; `whileHeld` runs once they
    /// all wait. Only the writer's own thread is blocked, as a write waiting for SQLite's lock blocks it:
    /// nothing here blocks a thread that tasks run on.
    private func whileTheWriterIsHeld<T: Sendable>(
        _ store: SQLiteStore, _ queued: [@Sendable (Database) throws -> T], whileHeld: () throws -> Void = {}
    ) async throws -> [Result<T, any Error>] {
        let holding = Flag()
        let release = DispatchSemaphore(value: 0)
        var released = false
        func letGo() {
            if !released { release.signal() }
            released = true
        }
        defer { letGo() }
        store.pool.asyncWriteWithoutTransaction { _ in
            holding.set()
            release.wait()
        }
        try await Polling.until("the writer queue held") { holding.isSet }
        return try await withThrowingTaskGroup(of: (Int, Result<T, any Error>).self) { group in
            for (index, change) in queued.enumerated() {
                group.addTask {
                    do { return (index, .success(try await store.write(change))) } catch { return (index, .failure(error)) }
                }
                // One at a time, so that they queue in this order.
                try await Polling.until("change \(index + 1) queued") { store.changes.waitingCount >= index + 1 }
            }
            try whileHeld()
            letGo()
            var results: [Int: Result<T, any Error>] = [:]
            for try await (index, result) in group { results[index] = result }
            return queued.indices.map { results[$0]! }
        }
    }

    private final class Flag: Sendable {
        private let value = Mutex(false)
        func set() { value.withLock { $0 = true } }
        var isSet: Bool { value.withLock { $0 } }
    }

    private func numbers(_ store: SQLiteStore) throws -> [Int] {
        try store.read { db in try Int.fetchAll(db, sql: "SELECT n FROM numbers ORDER BY n") }
    }

    @Test func changesQueuedTogetherShareOneTransactionAndEachGetsItsOwnAnswer() async throws {
        try await withSQLiteStore { store in
            let changes: [@Sendable (Database) throws -> (Int, Date)] = (1...10).map { n in
                { db in
                    try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n])
                    // Each change sees the ones queued before it.
                    let before = try Int.fetchOne(db, sql: "SELECT count(*) FROM numbers")!
                    return (before, try db.transactionDate)
                }
            }
            let results = try await whileTheWriterIsHeld(store, changes).map { try $0.get() }
            #expect(results.map(\.0) == Array(1...10))
            // GRDB's transaction date is taken when a transaction begins: one date, one transaction.
            #expect(Set(results.map(\.1)).count == 1)
            #expect(try numbers(store) == Array(1...10))
            // A change alone afterwards gets a transaction of its own.
            let alone = try await store.write { db in try db.transactionDate }
            #expect(alone != results[0].1)
        }
    }

    @Test func aChangeThatThrowsFailsAloneAndTheOthersAreWritten() async throws {
        try await withSQLiteStore { store in
            let changes: [@Sendable (Database) throws -> Void] = [
                { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (1)") },
                { db in
                    try db.execute(sql: "INSERT INTO numbers (n) VALUES (2)")
                    throw RefusedChange()
                },
                { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (3)") },
                // Breaks the UNIQUE constraint: SQLite's own error, for this change only.
                { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (1)") },
                { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (4)") },
            ]
            let results = try await whileTheWriterIsHeld(store, changes)
            #expect(throws: Never.self) { try results[0].get() }
            #expect(throws: RefusedChange()) { try results[1].get() }
            #expect(throws: Never.self) { try results[2].get() }
            #expect(throws: DatabaseError.self) { try results[3].get() }
            #expect(throws: Never.self) { try results[4].get() }
            #expect(try numbers(store) == [1, 3, 4])
        }
    }

    @Test func aChangeThatMakesTheCommitFailFailsAloneAndTheOthersAreWritten() async throws {
        try await withSQLiteStore { store in
            let changes: [@Sendable (Database) throws -> Date] = [
                { db in
                    try db.execute(sql: "INSERT INTO numbers (n) VALUES (1)")
                    return try db.transactionDate
                },
                // A child of no parent: accepted by its statement, refused at COMMIT.
                { db in
                    try db.execute(sql: "INSERT INTO children (parent) VALUES (7)")
                    return try db.transactionDate
                },
                { db in
                    try db.execute(sql: "INSERT INTO numbers (n) VALUES (2)")
                    return try db.transactionDate
                },
            ]
            let results = try await whileTheWriterIsHeld(store, changes)
            #expect(throws: DatabaseError.self) { try results[1].get() }
            let first = try results[0].get()
            let third = try results[2].get()
            // Written again, each in a transaction of its own.
            #expect(first != third)
            #expect(try numbers(store) == [1, 2])
            #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM children") } == 0)
        }
    }

    @Test func atMostSixtyFourChangesShareATransaction() async throws {
        try await withSQLiteStore { store in
            let changes: [@Sendable (Database) throws -> Date] = (1...65).map { n in
                { db in
                    try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n])
                    return try db.transactionDate
                }
            }
            let dates = try await whileTheWriterIsHeld(store, changes).map { try $0.get() }
            #expect(SQLiteGroupCommit.maximumChanges == 64)
            #expect(Set(dates.prefix(64)).count == 1)
            #expect(dates[64] != dates[0], "the 65th waits for the next transaction")
            #expect(try numbers(store) == Array(1...65))
        }
    }

    /// Another process holds the write lock past the busy timeout (1 s here): the changes that were to share
    /// a transaction fail with SQLite's busy error, and none is written; the store writes once the lock is free.
    @Test func changesWhoseTransactionCannotBeginFailAndNoneIsWritten() async throws {
        try await withSQLiteStore(busyTimeout: 1) { store in
            var holdsTheLock = Configuration()
            holdsTheLock.allowsUnsafeTransactions = true  // BEGIN in one access, ROLLBACK in another
            let otherProcess = try DatabaseQueue(path: store.path, configuration: holdsTheLock)
            let changes: [@Sendable (Database) throws -> Void] = (1...3).map { (n: Int) in
                { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n]) }
            }
            let results = try await whileTheWriterIsHeld(store, changes) {
                try otherProcess.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
            }
            try otherProcess.inDatabase { db in try db.execute(sql: "ROLLBACK") }
            for result in results {
                do {
                    try result.get()
                    Issue.record("a change was written while another connection held the write lock")
                } catch let error as DatabaseError {
                    #expect(error.resultCode == .SQLITE_BUSY)
                }
            }
            #expect(try numbers(store) == [])
            try await store.write { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (4)") }
            #expect(try numbers(store) == [4])
        }
    }
}
