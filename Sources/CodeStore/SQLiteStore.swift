import CoreMetrics
import Foundation
import GRDB

/// The store on SQLite through GRDB: a `DatabasePool` in WAL mode (readers never block the writer), a busy
/// timeout so that several processes on one host can share the file, and GRDB's `DatabaseMigrator`.
///
/// A change is a closure run by `write { db in ... }`: inside a transaction, which begins IMMEDIATE, so it
/// holds SQLite's single write lock from its first statement; changes that arrive together share one
/// transaction, and when one throws or the commit fails each is written again alone (SQLiteGroupCommit.swift):
/// a change may run twice, so it has no effect outside the database. That lock is what makes a guarded
/// update and the insert that depends on it atomic, and what serializes claims (SQLite has no row locks
/// and needs no `SKIP LOCKED`). Reads run on read-only connections on the calling thread (`read`).
///
/// Statements are prepared once per connection and reused (`SQLRequest(literal:cached: true)`,
/// `cachedStatement(literal:)`): the store runs a handful of statements all the time, and for a lookup by
/// key, preparing costs about as much as running.
public final class SQLiteStore: Store, Sendable {
    public let path: String
    /// The connections `read` uses, one per thread that reads at once (SQLiteReaders.swift). Declared
    /// before the pool, so they close first and the pool's writer, closing last, checkpoints the WAL.
    let readers: SQLiteReaders
    let pool: DatabasePool
    let changes: SQLiteGroupCommit
    let metrics: StoreMetrics

    /// How long a writer waits for another process's write lock before failing with SQLITE_BUSY.
    public static let busyTimeout: TimeInterval = 10

    public var backend: String { "sqlite" }

    public convenience init(path: String, metricsFactory: (any MetricsFactory)? = nil) throws {
        // Reads run on their caller's thread (see `read`): a connection for every thread of NIO's loops and
        // of the concurrency pool (one per core each), so that none waits for one.
        try self.init(path: path, metricsFactory: metricsFactory, readerCount: max(4, 2 * ProcessInfo.processInfo.activeProcessorCount))
    }

    /// `readerCount`: how many connections `read` keeps (SQLiteReaders); the tests set fewer than the
    /// threads they read from. `busyTimeout`: the tests that hold the write lock wait less.
    init(
        path: String, metricsFactory: (any MetricsFactory)?, readerCount: Int, busyTimeout: TimeInterval = SQLiteStore.busyTimeout
    ) throws {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // With WAL, NORMAL loses at most the last transactions on power loss, never consistency.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        pool = try DatabasePool(path: path, configuration: configuration)
        changes = SQLiteGroupCommit(pool: pool)
        readers = SQLiteReaders(path: path, count: readerCount, busyTimeout: busyTimeout)
        metrics = StoreMetrics(backend: "sqlite", factory: metricsFactory)
    }

    public func migrate() async throws {
        // GRDB's migrator reads the applied migrations before it takes the write lock, so two processes
        // starting together (api and worker) can both try to apply the same one. The loser's statement
        // fails; a second pass then sees the migration as applied.
        let migrator = Self.migrator
        // A database migrated by a newer binary holds migrations this one does not know: stop with a
        // clear error rather than run on a schema it does not understand (GRDB would ignore them, or
        // stop the process with fatalError when a known one comes after).
        let applied = try Self.appliedMigrations(pool, migrator)
        let unknown = applied.subtracting(SchemaMigrations.names(SchemaMigrations.sqlite))
        guard unknown.isEmpty else { throw StoreError.schemaNewerThanBinary(unknownMigrations: unknown.sorted()) }
        var attempt = 0
        while true {
            do {
                try migrator.migrate(pool)
                return
            } catch is DatabaseError where attempt < 3 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
    }

    /// Read the way the migrator itself reads (synchronously): an async read here, between parallel
    /// migrations that block their threads on the write lock, could wait for a thread that never frees.
    private static func appliedMigrations(_ pool: DatabasePool, _ migrator: DatabaseMigrator) throws -> Set<String> {
        try pool.read { db in try migrator.appliedIdentifiers(db) }
    }

    /// A read of one statement, run on the calling thread on a read-only connection (`SQLiteReaders`;
    /// GRDB's pool when all of those are busy).
    ///
    /// `body` runs exactly one statement (every read of the store does), outside a transaction: SQLite
    /// runs such a statement in a read transaction of its own, which sees every write committed before the
    /// statement began (a revoked key is refused at once) and ends when the statement runs to its end or
    /// is reset (GRDB's cursors reset theirs when they are dropped). GRDB's `read` would wrap it in
    /// `BEGIN DEFERRED` and `COMMIT`, two more statements parsed and prepared anew on every read
    /// (docs/performance.md, fourteenth round). A read of several statements that must agree with each
    /// other needs a transaction: add one for it rather than run it here.
    ///
    /// Not GRDB's async `read`, which hands the closure to the connection's dispatch queue and resumes the
    /// caller on another thread: two thread switches per read cost more than the read (a lookup by key
    /// from the page cache takes microseconds), and an authenticated GET made two of them. Blocking the
    /// caller is safe for reads: in WAL mode a reader never waits for the writer. Writes stay on GRDB's
    /// queues: they can wait up to `busyTimeout` for another process's write lock.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        if let value = try readers.read(body) { return value }
        return try pool.unsafeRead(body)
    }

    /// A change: `updates` runs on GRDB's writer queue inside a transaction, which it may share with
    /// changes queued beside it (SQLiteGroupCommit); the result is answered once it is committed.
    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await changes.write(updates)
    }

    public func ping() async throws {
        _ = try read { db in try Int.fetchOne(db, sql: "SELECT 1") }
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
