import GRDB
import Synchronization

/// Group commit for the SQLite store's changes: changes that arrive while a transaction is being written
/// wait for it to end and are then written together, in one transaction. Each caller is answered once that
/// transaction is committed.
///
/// Why: SQLite has one writer, GRDB's writer queue, and under concurrent creates it was code-api's
/// bottleneck (a third of the process's CPU samples were on that one thread, docs/performance.md,
/// thirteenth round). Each transaction wrote the pages it touched to the WAL again (the tables' and
/// indexes' last leaves, two `pwrite`s each), took and released the WAL's locks, and counted toward the
/// next checkpoint. Changes committed together write each shared page once.
///
/// What a caller sees is what it saw with one transaction per change:
/// - nothing is answered before the commit, so no caller is told of a change that could still be lost;
/// - changes run one after another in the order they arrived, each seeing the ones before it (a second
///   create with the same idempotency key replays the first);
/// - when a change throws, or the commit fails, nothing of that transaction is kept and each of its
///   changes is written again in a transaction of its own, as if it had come alone: only a change that
///   fails alone fails. (A change has no effect outside the database, so running one again after a
///   rollback is running it for the first time.) Savepoints around each change would
///   spare that, at a cost on every change: SQLite allocates and frees a savepoint's journal state each
///   time, and freeing it made glibc give the writer thread's heap back to the kernel (`madvise`, with a
///   TLB shootdown on the other core), measured 0.63 times per create;
/// - a change that comes alone, when nothing is being written, is written at once: nothing waits for
///   company.
///
/// A change is not cancelled with its caller's task once it is queued (GRDB's async `write` interrupts
/// the statement): it is written, as a change whose answer was lost on the network would be.
final class SQLiteGroupCommit: Sendable {
    /// At most this many changes share one transaction, so that the write lock, which other processes
    /// (the workers) wait for, is held for a bounded time.
    static let maximumChanges = 64

    private let pool: DatabasePool
    private let queue = Mutex(WaitingChanges())

    private struct WaitingChanges {
        var changes: [any GroupedChange] = []
        /// Whether a writer-queue job is writing; it takes every change queued before it stops.
        var isWriting = false
    }

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Runs `updates` in a transaction, shared with the changes queued beside it, and answers its result
    /// once that transaction is committed.
    func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let change = PendingChange(updates: updates, continuation: continuation)
            let startsWriting = queue.withLock { queue -> Bool in
                queue.changes.append(change)
                defer { queue.isWriting = true }
                return !queue.isWriting
            }
            if startsWriting {
                pool.asyncWriteWithoutTransaction { [self] db in writeQueuedChanges(db) }
            }
        }
    }

    /// How many changes wait for the transaction being written to end.
    var waitingCount: Int { queue.withLock { $0.changes.count } }

    /// Writes transactions until no change is waiting. Runs on GRDB's writer queue.
    private func writeQueuedChanges(_ db: Database) {
        while true {
            let changes = queue.withLock { queue -> [any GroupedChange] in
                let taken = Array(queue.changes.prefix(Self.maximumChanges))
                queue.changes.removeFirst(taken.count)
                if taken.isEmpty { queue.isWriting = false }
                return taken
            }
            if changes.isEmpty { return }
            commit(changes, db)
        }
    }

    private func commit(_ changes: [any GroupedChange], _ db: Database) {
        if changes.count > 1 {
            var began = false
            do {
                try db.inTransaction(.immediate) {
                    began = true
                    for change in changes { try change.run(db) }
                    return .commit
                }
                for change in changes { change.answer(failingWith: nil) }
                return
            } catch  where !began {
                // No transaction (the write lock stayed another process's past the busy timeout): each
                // change alone would wait as long again.
                for change in changes { change.answer(failingWith: error) }
                return
            } catch {
                // A change threw, or the commit failed, and the transaction was rolled back: each change
                // is written again, alone, below.
            }
        }
        for change in changes { commitAlone(change, db) }
    }

    private func commitAlone(_ change: any GroupedChange, _ db: Database) {
        do {
            try db.inTransaction(.immediate) {
                try change.run(db)
                return .commit
            }
            change.answer(failingWith: nil)
        } catch {
            change.answer(failingWith: error)
        }
    }
}

/// A queued change, its result type erased so that changes of every type share one queue.
private protocol GroupedChange: Sendable {
    /// Runs the change, keeping its result; an error is thrown.
    func run(_ db: Database) throws
    /// Answers the caller: with the kept result, or `error` when its transaction failed.
    func answer(failingWith error: (any Error)?)
}

/// One caller's change. Its state is touched only on GRDB's writer queue, one job at a time.
private final class PendingChange<T: Sendable>: GroupedChange, @unchecked Sendable {
    private let updates: @Sendable (Database) throws -> T
    private let continuation: CheckedContinuation<T, any Error>
    private var result: T?

    init(updates: @escaping @Sendable (Database) throws -> T, continuation: CheckedContinuation<T, any Error>) {
        self.updates = updates
        self.continuation = continuation
    }

    func run(_ db: Database) throws {
        result = try updates(db)
    }

    func answer(failingWith error: (any Error)?) {
        if let error {
            continuation.resume(throwing: error)
        } else if let result {
            continuation.resume(returning: result)
        } else {
            // Not reached: a committed transaction ran every change it took.
            continuation.resume(throwing: DatabaseError(resultCode: .SQLITE_ABORT, message: "change not written"))
        }
    }
}
