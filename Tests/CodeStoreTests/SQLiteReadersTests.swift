import CodeTestSupport
import Foundation
import GRDB
import Synchronization
import Testing

@testable import CodeStore

/// The read-only connections SQLite reads run on (SQLiteReaders.swift): a busy connection is passed over,
/// never waited for, and the store then reads through GRDB's pool; every read sees what was committed
/// before it began, cached statements included; reads from more threads than connections all answer.
@Suite(.timeLimit(.minutes(1))) struct SQLiteReadersTests {
    private func withSQLiteStore(readerCount: Int, _ body: (SQLiteStore) async throws -> Void) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("code.db").path, metricsFactory: nil, readerCount: readerCount)
        try await store.migrate()
        try await store.pool.write { db in try db.execute(sql: "CREATE TABLE numbers (n INTEGER NOT NULL)") }
        try await body(store)
    }

    @Test func aBusyConnectionIsPassedOverAndTheStoreReadsThroughThePool() async throws {
        try await withSQLiteStore(readerCount: 1) { store in
            let entered = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let held = Mutex<Int??>(nil)
            let holder = Thread {
                let value = try? store.readers.read { db -> Int? in
                    entered.signal()
                    release.wait()
                    return try Int.fetchOne(db, sql: "SELECT 1")
                }
                held.withLock { $0 = value }
            }
            holder.start()
            entered.wait()
            // The only connection is in use on the other thread, which waits for this test: a read that
            // waited for the connection would never return (the time limit fails the test).
            let whileBusy = try store.readers.read { db in try Int.fetchOne(db, sql: "SELECT 2") }
            let throughThePool = try store.read { db in try Int.fetchOne(db, sql: "SELECT 3") }
            release.signal()
            #expect(whileBusy == nil)
            #expect(throughThePool == 3)
            try await Polling.until("the holding thread finished", every: .milliseconds(5)) { !holder.isExecuting }
            #expect(held.withLock { $0 } == .some(.some(1)))
            #expect(try store.readers.read { db in try Int.fetchOne(db, sql: "SELECT 4") } == .some(4))
        }
    }

    @Test func everyReadSeesTheLastCommittedWrite() async throws {
        try await withSQLiteStore(readerCount: 1) { store in
            for n in 1...5 {
                try await store.pool.write { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n]) }
                // One connection serves every read: it must not keep an older snapshot.
                #expect(try store.readers.read { db in try Int.fetchOne(db, sql: "SELECT max(n) FROM numbers") } == .some(n))
            }
        }
    }

    /// Reads run outside a transaction, so what ends each one's snapshot is its statement running to its
    /// end or being reset. The store's statements are cached (kept prepared between reads), and every
    /// `fetchOne` stops at its first row, leaving the statement to be reset when GRDB's cursor is dropped:
    /// a statement left so must not hold its snapshot into the next read, which runs another statement on
    /// the same connection after a write. Each kind of cursor the store reads through is tried: a value's
    /// (a column read as Int), a record's (the store's records, e.g. a deployment by id, whose cursor resets
    /// its statement itself) and a row's (the queue's status).
    @Test(arguments: FirstRowRead.allCases)
    func aCachedStatementLeftAtItsFirstRowKeepsNoSnapshot(_ firstRow: FirstRowRead) async throws {
        try await withSQLiteStore(readerCount: 1) { store in
            try await store.pool.write { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (0)") }
            for n in 1...5 {
                let newest = try store.read { db in try firstRow.read(db) }
                #expect(newest == n - 1)
                try await store.pool.write { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n]) }
                let maximum = try store.read { db in try Int.fetchOne(db.cachedStatement(sql: "SELECT max(n) FROM numbers")) }
                #expect(maximum == n)
            }
        }
    }

    /// The first row of several, read through one of the cursors the store uses on a cached statement:
    /// GRDB's for a value and a row, the store's own (ColumnRecordCursor) for a record, by statement and
    /// by request.
    enum FirstRowRead: CaseIterable, Sendable {
        case value, record, recordRequest, row

        func read(_ db: Database) throws -> Int? {
            let statement = try db.cachedStatement(sql: "SELECT n FROM numbers ORDER BY n DESC")
            let records = "SELECT 'dep_' || n AS id, n AS attempt FROM numbers ORDER BY n DESC"
            switch self {
            case .value: return try Int.fetchOne(statement)
            case .record: return try CancelledRecord.fetchOne(db.cachedStatement(sql: records), arguments: []).map { Int($0.attempt) }
            case .recordRequest: return try SQLRequest<CancelledRecord>(sql: records, cached: true).fetchOne(db).map { Int($0.attempt) }
            case .row: return try Row.fetchOne(statement).map { try $0.decode(atIndex: 0) }
            }
        }
    }

    @Test func readsFromMoreThreadsThanConnectionsAllAnswer() async throws {
        try await withSQLiteStore(readerCount: 2) { store in
            try await store.pool.write { db in
                for n in 1...100 { try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n]) }
            }
            let threads = 16
            let readsPerThread = 200
            let answers = Mutex<[Int]>([])
            let done = DispatchGroup()
            let start = DispatchSemaphore(value: 0)
            for _ in 0..<threads {
                done.enter()
                Thread {
                    start.wait()
                    var mine: [Int] = []
                    for _ in 0..<readsPerThread {
                        let sum = try? store.read { db in try Int.fetchOne(db, sql: "SELECT sum(n) FROM numbers") }
                        mine.append(sum.flatMap { $0 } ?? -1)
                    }
                    answers.withLock { $0 += mine }
                    done.leave()
                }.start()
            }
            // 16 threads released together on 2 connections: whenever more than two read at once, the others
            // read through the pool.
            for _ in 0..<threads { start.signal() }
            while done.wait(timeout: .now()) == .timedOut { try await Task.sleep(for: .milliseconds(10)) }
            let all = answers.withLock { $0 }
            #expect(all.count == threads * readsPerThread)
            #expect(all.allSatisfy { $0 == 5050 })
        }
    }
}
