import GRDB
import Synchronization

/// Group commit for the SQLite store's changes: changes that arrive while a transaction is being written
/// wait for it to end and are then written together, in one transaction, each inside a savepoint of its
/// own. Each caller is answered once that transaction is committed.
///
/// Why: SQLite has one writer, GRDB's writer queue, and under concurrent creates it was code-api's
/// bottleneck (a third of the process's CPU samples were on that one thread, docs/performance.md,
/// thirteenth round). Each transaction wrote the pages it touched to the WAL again (a create touches about
/// a dozen: the tables' and indexes' rightmost leaves, two `pwrite`s each), took and released the WAL's
/// locks, and counted toward the next checkpoint. Changes committed together write each shared page once.
///
/// What a caller sees is what it saw with one transaction per change:
/// - a change that throws is rolled back to its savepoint, alone, and its caller gets the error; the
///   others in the transaction are kept;
/// - nothing is answered before the commit, so no caller is told of a change that could still be lost
///   to a failed commit; when the commit fails, every change in it fails with that error;
/// - changes run one after another in the order they arrived, each seeing the ones before it (a second
///   create with the same idempotency key replays the first);
/// - a change that comes alone, when nothing is being written, is written at once, in a transaction of
///   its own and without a savepoint: nothing waits for company.
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
        do {
            try db.inTransaction(.immediate) {
                if changes.count == 1 {
                    // Alone: its error rolls the whole transaction back, as GRDB's `write` does.
                    try changes[0].run(db)
                } else {
                    for change in changes {
                        // A change whose error ended the transaction (SQLite rolls back on some I/O
                        // errors): the commit below fails, and with it every change.
                        guard db.isInsideTransaction else { break }
                        change.runInSavepoint(db)
                    }
                }
                return .commit
            }
            for change in changes { change.answer(failingWith: nil) }
        } catch {
            for change in changes { change.answer(failingWith: error) }
        }
    }
}

/// A queued change, its result type erased so that changes of every type share one queue.
private protocol GroupedChange: Sendable {
    /// Runs the change, keeping its result; an error is thrown.
    func run(_ db: Database) throws
    /// Runs the change inside a savepoint, keeping its result or its error: a change that throws is
    /// rolled back, alone.
    func runInSavepoint(_ db: Database)
    /// Answers the caller: with the kept result, unless the transaction failed (`error`) or the change
    /// never ran.
    func answer(failingWith error: (any Error)?)
}

/// One caller's change. Its state is touched only on GRDB's writer queue, one job at a time, and read by
/// `answer` on that same queue, after the transaction.
private final class PendingChange<T: Sendable>: GroupedChange, @unchecked Sendable {
    private let updates: @Sendable (Database) throws -> T
    private let continuation: CheckedContinuation<T, any Error>
    private var result: Result<T, any Error>?

    init(updates: @escaping @Sendable (Database) throws -> T, continuation: CheckedContinuation<T, any Error>) {
        self.updates = updates
        self.continuation = continuation
    }

    func run(_ db: Database) throws {
        result = .success(try updates(db))
    }

    func runInSavepoint(_ db: Database) {
        do {
            try db.inSavepoint {
                result = .success(try updates(db))
                return .commit
            }
        } catch {
            result = .failure(error)
        }
    }

    func answer(failingWith error: (any Error)?) {
        switch (result, error) {
        case (.failure(let own)?, _):
            // The change's own error explains its failure better than the commit's that followed.
            continuation.resume(throwing: own)
        case (_, let error?):
            continuation.resume(throwing: error)
        case (.success(let value)?, nil):
            continuation.resume(returning: value)
        case (nil, nil):
            // Not reached: a committed transaction ran every change it took.
            continuation.resume(throwing: DatabaseError(resultCode: .SQLITE_ABORT, message: "change not written"))
        }
    }
}
