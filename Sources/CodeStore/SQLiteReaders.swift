import Foundation
import GRDB
import Synchronization

/// Read-only connections for reads that run on the calling thread, each behind its own lock, taken with a
/// try-lock: a thread takes the first free one, so with one reader per thread no read ever waits.
///
/// Why not `DatabasePool.read`: its reader pool takes a semaphore, a dispatch group, a reader-writer lock
/// built on a concurrent dispatch queue (with barriers, four times per read) and the reader's own queue.
/// With NIO's two loops reading at once, those locks contended: under load each loop slept on them (futex
/// waits in `_dispatch_sync_f_slow`) several thousand times a second, and GET by id ran at half the
/// throughput it reached with the loops apart (docs/performance.md, tenth round). Here a read costs one
/// uncontended lock and the connection's own queue, entered by one thread at a time.
///
/// A connection is opened the first time its slot is used, not at start-up. When every slot is busy (more
/// threads reading at once than slots), the read goes to the pool, as before.
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
        self.slots = (0..<count).map { _ in Slot() }
    }

    /// Runs `body` in one (deferred) transaction on a free connection; nil when none was free.
    func read<T>(_ body: (Database) throws -> T) throws -> T? {
        var outcome: Result<T, any Error>?
        for slot in slots {
            // The value leaves through `outcome`: a result of the lock's closure would have to be Sendable.
            let taken = slot.connection.withLockIfAvailable { connection -> Bool in
                outcome = Result {
                    if connection == nil { connection = try DatabaseQueue(path: path, configuration: configuration) }
                    return try connection!.read(body)
                }
                return true
            }
            if taken != nil, let outcome { return try outcome.get() }
        }
        return nil
    }
}
