import Foundation
import GRDB
import Synchronization

/// Read-only connections for reads that run on the calling thread, each behind its own lock, taken with a
/// try-lock: a thread takes the first free one, so with one connection per thread no read ever waits.
///
/// Why not `DatabasePool.read`: its reader pool takes a semaphore, a dispatch group, a reader-writer lock
/// built on a concurrent dispatch queue (with barriers) and the reader's own queue. With NIO's two loops
/// reading at once, those locks contended: under load the loops slept on them (futex waits in
/// `_dispatch_sync_f_slow` under `Pool.get`, `Pool.release` and `DatabasePool.currentReader`). Here a read
/// costs one uncontended lock and the connection's own queue, entered by one thread at a time
/// (docs/performance.md, tenth round).
///
/// Each read runs its one statement outside a transaction (`DatabaseQueue.unsafeRead`; see
/// `SQLiteStore.read` for why that is enough). Unlike `DatabasePool` it does not clear GRDB's schema
/// cache when another connection changed the schema; the store reads with SQL of its own and never uses
/// that cache. Not reentrant: a read inside a read's body stops the process (the thread already holds the
/// slot's lock), as nested `pool.read` did.
///
/// A connection is opened the first time its slot is used, not at start-up. `read` answers nil, and the
/// store reads through GRDB's pool instead, when every slot is busy (more threads reading at once than
/// slots) or a connection cannot be opened (the pool's read then reports why).
final class SQLiteReaders: Sendable {
    private final class Slot: Sendable {
        let connection = Mutex<DatabaseQueue?>(nil)
    }

    private let path: String
    private let configuration: Configuration
    private let slots: [Slot]

    init(path: String, count: Int, busyTimeout: TimeInterval) {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(busyTimeout)
        configuration.label = "code.reader"
        self.path = path
        self.configuration = configuration
        self.slots = (0..<max(1, count)).map { _ in Slot() }
    }

    /// Runs `body` on a free connection; nil when none was free or could be opened.
    func read<T>(_ body: (Database) throws -> T) throws -> T? {
        // Each thread starts its search at a slot of its own (by its identity), so that two loops do not
        // both try the first slot: a failed try-lock costs a system call.
        var threadHash = Hasher()
        threadHash.combine(pthread_self())
        let start = Int(UInt(bitPattern: threadHash.finalize()) % UInt(slots.count))
        var outcome: Result<T, any Error>?
        for offset in 0..<slots.count {
            let slot = slots[(start + offset) % slots.count]
            // The value leaves through `outcome`: a result of the lock's closure would have to be Sendable.
            let taken = slot.connection.withLockIfAvailable { connection -> Bool in
                if connection == nil { connection = try? DatabaseQueue(path: path, configuration: configuration) }
                guard let connection else { return false }
                outcome = Result { try connection.unsafeRead(body) }
                return true
            }
            if taken == true, let outcome { return try outcome.get() }
        }
        return nil
    }
}
