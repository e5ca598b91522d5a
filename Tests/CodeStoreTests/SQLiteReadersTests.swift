import CodeTestSupport
import Foundation
import GRDB
import Synchronization
import Testing

@testable import CodeStore

/// The read-only connections SQLite reads run on (SQLiteReaders.swift): a busy connection is passed over,
/// never waited for; every read sees what was committed before it began; reads from more threads than
/// connections all answer.
@Suite struct SQLiteReadersTests {
    private func withSQLiteStore(_ body: (SQLiteStore) async throws -> Void) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStore(path: directory.appendingPathComponent("code.db").path)
        try await store.migrate()
        try await store.pool.write { db in try db.execute(sql: "CREATE TABLE numbers (n INTEGER NOT NULL)") }
        try await body(store)
    }

    @Test func aBusyConnectionIsPassedOverNotWaitedFor() async throws {
        try await withSQLiteStore { store in
            let readers = SQLiteReaders(path: store.path, count: 1, busyTimeout: 1)
            let entered = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let holder = Thread {
                _ = try? readers.read { db -> Int? in
                    entered.signal()
                    release.wait()
                    return try Int.fetchOne(db, sql: "SELECT 1")
                }
            }
            holder.start()
            entered.wait()
            // The only connection is in use on the other thread: this read is refused at once.
            let whileBusy = try readers.read { db in try Int.fetchOne(db, sql: "SELECT 2") }
            release.signal()
            #expect(whileBusy == nil)
            // ...and the store's read then runs on the pool instead.
            #expect(try store.read { db in try Int.fetchOne(db, sql: "SELECT 3") } == 3)
            while holder.isExecuting { try await Task.sleep(for: .milliseconds(5)) }
            #expect(try readers.read { db in try Int.fetchOne(db, sql: "SELECT 4") } == .some(4))
        }
    }

    @Test func everyReadSeesTheLastCommittedWrite() async throws {
        try await withSQLiteStore { store in
            for n in 1...5 {
                try await store.pool.write { db in try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n]) }
                // The same connection serves each read (one thread): it must not keep an older snapshot.
                #expect(try store.readers.read { db in try Int.fetchOne(db, sql: "SELECT max(n) FROM numbers") } == .some(n))
            }
        }
    }

    @Test func readsFromMoreThreadsThanConnectionsAllAnswer() async throws {
        try await withSQLiteStore { store in
            try await store.pool.write { db in
                for n in 1...100 { try db.execute(sql: "INSERT INTO numbers (n) VALUES (?)", arguments: [n]) }
            }
            let threads = 16
            let readsPerThread = 200
            let answers = Mutex<[Int]>([])
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                var mine: [Int] = []
                for _ in 0..<readsPerThread {
                    let sum = try? store.read { db in try Int.fetchOne(db, sql: "SELECT sum(n) FROM numbers") }
                    mine.append(sum.flatMap { $0 } ?? -1)
                }
                answers.withLock { $0 += mine }
            }
            let all = answers.withLock { $0 }
            #expect(all.count == threads * readsPerThread)
            #expect(all.allSatisfy { $0 == 5050 })
        }
    }
}
