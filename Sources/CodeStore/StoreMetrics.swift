import CodeTiming
import CoreMetrics
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import Tracing

/// `code_db_query_duration_seconds{operation,backend}` around store operations, the deadline of each, and,
/// inside a traced operation, a client span for each transaction that writes.
struct StoreMetrics: Sendable {
    let backend: String
    let factory: (any MetricsFactory)?
    /// When an operation gives up with `StoreError.unavailable`. PostgreSQL's pool waits for a connection as
    /// long as the server is down; without a deadline, every request would hang instead of answering 503.
    /// (SQLite has its busy timeout.)
    let patience: ServerSilence?
    /// Maps the driver's errors that mean "the database cannot be reached" to `StoreError.unavailable`.
    let unavailable: @Sendable (any Error) -> String?
    /// One timer per operation: creating one looks it up in the metrics factory, which is too slow for
    /// every query.
    private let timers = NIOLockedValueBox<[String: Metrics.Timer]>([:])

    init(
        backend: String, factory: (any MetricsFactory)?, patience: ServerSilence? = nil,
        unavailable: @escaping @Sendable (any Error) -> String? = { _ in nil }
    ) {
        self.backend = backend
        self.factory = factory
        self.patience = patience
        self.unavailable = unavailable
    }

    /// Store operations that only read: no span. swift-otel hands every span through three asynchronous
    /// streams; with a span for each read (the key, then the deployment) tracing cost an authenticated GET 28 %
    /// of its throughput, with the request's span alone 13 % (docs/observability.md, "Cost"). Their
    /// durations are in `code_db_query_duration_seconds`. Anything not listed (a new operation too) gets a span.
    static let readOperations: Set<String> = [
        "audit.list", "deployment.get", "deployment.list", "event.list", "key.list", "key.lookup", "manifest.get", "ping",
        "queue.cancel_requested", "queue.depth",
    ]

    func measure<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        // Only inside a traced request or pipeline: the worker's claim polling would otherwise start a trace of
        // its own at every poll. With tracing off nothing sets a context, so this costs one read.
        guard ServiceContext.current != nil, !Self.readOperations.contains(operation) else { return try await timed(operation, body) }
        return try await withSpan("db \(operation)", ofKind: .client) { span in
            span.attributes["db.system.name"] = databaseSystem
            span.attributes["db.operation.name"] = operation
            return try await timed(operation, body)
        }
    }

    /// The OpenTelemetry `db.system.name` of the backend.
    private var databaseSystem: String { backend == "postgres" ? "postgresql" : backend }

    private func timed<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let factory else { return try await withDeadline(operation, body) }
        let timer = timers.withLockedValue { timers in
            if let timer = timers[operation] { return timer }
            let timer = Metrics.Timer(
                label: "code_db_query_duration_seconds", dimensions: [("operation", operation), ("backend", backend)], factory: factory
            )
            timers[operation] = timer
            return timer
        }
        let start = ContinuousClock.now
        defer { timer.record(duration: ContinuousClock.now - start) }
        return try await withDeadline(operation, body)
    }

    private func withDeadline<T: Sendable>(_ operation: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        guard let patience else { return try await body() }
        let start = NIODeadline.now()
        do {
            let value = try await StoreDeadline.run(patience, since: start, operation: operation, body)
            patience.answered()
            return value
        } catch StoreDeadline.Exceeded.exceeded {
            let waited = (NIODeadline.now() - start).nanoseconds / 1_000_000
            throw StoreError.unavailable(
                "no answer after \(waited) ms (\(operation)): "
                    + "the server answered nothing for \(patience.silence), or the operation passed \(patience.ceiling)")
        } catch {
            if let reason = unavailable(error) { throw StoreError.unavailable(reason) }
            // The server answered, if with an error (a constraint, a serialization failure).
            if !(error is CancellationError) { patience.answered() }
            throw error
        }
    }
}

/// When an operation on a database server gives up: once the server has answered nothing, to this
/// operation or any other of the process, for `silence`; and in any case after `ceiling`.
///
/// Why not one fixed deadline: under load, operations queue for the pool's connections, and a queue longer
/// than the deadline turned a busy server into 503s. CI's load drill on PostgreSQL (256 connections against
/// a debug build) had 118 of ~2,300 creates answer 503 after 1.5 s in the pool's queue while the server
/// answered other operations all along. What the deadline is for is a server that is down or cannot be
/// reached: then nothing answers, and every operation gives up `silence` after the last answer (a request
/// made while the server is down: `silence` after it began). `ceiling` bounds the wait of one operation on
/// a server that answers others (a lock held elsewhere, a queue that does not move for it).
///
/// Silence is judged by what this process has run, and a process that is behind has not run the answers
/// it has: `StoreDeadline` gives up on silence only once a job it enqueues runs promptly (`StarvationProbe`).
final class ServerSilence: Sendable {
    let silence: Duration
    let ceiling: Duration
    /// When any operation last had an answer, in `NIODeadline` uptime nanoseconds. Relaxed: a stale read
    /// can only make an operation wait one check longer.
    private let lastAnswer: Synchronization.Atomic<UInt64>

    init(silence: Duration, ceiling: Duration) {
        self.silence = silence
        self.ceiling = ceiling
        lastAnswer = Synchronization.Atomic(NIODeadline.now().uptimeNanoseconds)
    }

    /// An operation had an answer from the server: the server is there.
    func answered() {
        lastAnswer.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }

    /// What an operation that began at `start` does now: wait (how much longer), or give up because the
    /// server has been silent or because the ceiling has passed.
    func verdict(since start: NIODeadline) -> StoreDeadline.Verdict {
        let now = NIODeadline.now()
        let untilCeiling = start + TimeAmount(ceiling) - now
        // A wait shorter than a millisecond is not worth a timer.
        let oneTimer = TimeAmount.milliseconds(1)
        guard untilCeiling >= oneTimer else { return .pastCeiling }
        // Silence counts from the later of the operation's start and the last answer: an operation that
        // begins after a quiet spell still waits `silence` for an answer of its own.
        let heardOrStarted = max(start, NIODeadline.uptimeNanoseconds(lastAnswer.load(ordering: .relaxed)))
        let untilSilence = heardOrStarted + TimeAmount(silence) - now
        guard untilSilence >= oneTimer else { return .silent }
        return .wait(.nanoseconds(min(untilCeiling, untilSilence).nanoseconds))
    }
}

/// Runs an operation with a deadline that holds even when the operation ignores cancellation: the caller
/// gets `StoreError.unavailable` at the deadline, and the operation (cancelled) ends in the background.
/// The outcome of a write that times out is unknown (it may still commit); every write the store does is
/// guarded or idempotent, so a retry is safe.
public enum StoreDeadline {
    /// What `run` throws at the deadline; the store's operations turn it into `StoreError.unavailable`.
    public enum Exceeded: Error { case exceeded }

    /// What a deadline's check decides.
    enum Verdict: Equatable {
        /// Check again after this long.
        case wait(Duration)
        /// The server has answered nothing for the silence limit: give up once this process is shown to
        /// be running its jobs promptly (`StarvationProbe`), since an answer may be in and not yet run.
        case silent
        /// A hard limit has passed: give up now.
        case pastCeiling
    }

    /// Runs `body`, throwing `Exceeded.exceeded` when it takes longer than `limit`. A hard limit (the
    /// heartbeat's renewal must stop a pipeline before its lease runs out, starved or not).
    public static func run<T: Sendable>(
        _ limit: Duration, operation: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await run(firstCheckAfter: limit, verdict: { .pastCeiling }, promptWithin: .zero, operation: operation, body)
    }

    /// Runs `body`, throwing `Exceeded.exceeded` when `patience` runs out: the server silent for its
    /// `silence` since the later of `start` and the last answer (and this process not behind), or the
    /// ceiling passed since `start`.
    static func run<T: Sendable>(
        _ patience: ServerSilence, since start: NIODeadline, operation: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        // Before the first timer, a verdict of silence counts as the server's: nothing of this operation's
        // can have been answered and left unrun yet.
        guard case .wait(let first) = patience.verdict(since: start) else { throw Exceeded.exceeded }
        return try await run(
            firstCheckAfter: first, verdict: { patience.verdict(since: start) }, promptWithin: patience.silence / 4, operation: operation,
            body)
    }

    private static func run<T: Sendable>(
        firstCheckAfter first: Duration, verdict: @escaping @Sendable () -> Verdict, promptWithin: Duration, operation: String,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = OneShot<T>()
        let work = Task {
            do { outcome.complete(.success(try await body())) } catch { outcome.complete(.failure(error)) }
        }
        let giveUp: @Sendable () -> Void = {
            outcome.complete(.failure(Exceeded.exceeded))
            work.cancel()
        }
        // The probe runs at the priority `work` runs at, so that it queues behind `work`'s jobs, not beside them.
        let probe = StarvationProbe(priority: Task.currentPriority, promptWithin: promptWithin)
        // The deadline is a timer on an event loop (an entry in its timer heap), not a task that sleeps:
        // `Task.sleep` goes through Dispatch's timer thread, a thread switch for every operation (LoopTimer).
        let timer = LoopTimer.repeating(after: first) {
            switch verdict() {
            case .wait(let more):
                return more
            case .pastCeiling:
                giveUp()
                return nil
            case .silent:
                // Answers the probe finds run in the meantime (other operations') move the silence on.
                probe.send {
                    if case .wait = verdict() { return }
                    giveUp()
                }
                return StarvationProbe.recheck
            }
        }
        defer { timer.cancel() }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            work.cancel()
            outcome.complete(.failure(CancellationError()))
        }
    }
}

/// Tells a silent server from a process that is behind. The deadline's timer fires on an event loop, but
/// an answer the driver has read resumes the operation through Swift's executor, which a process with more
/// ready work than cores runs late: in a full test run (every test case at once, one debug process, two
/// cores) these probes started a median 125 ms and up to 2.3 s after they were enqueued, and an answer read
/// in such a stretch waits as long before its operation sees it.
/// So at a deadline of silence the timer enqueues a job (a task at the operation's priority) behind whatever
/// is queued, the operation's own answer included, and the operation gives up only if that job starts within
/// `promptWithin` (a quarter of the silence limit) and the server is still silent then: a process that is
/// keeping up, whose answers would have run. A job that starts later means the process was behind: the timer
/// checks again after `recheck`. `ServerSilence.ceiling` still bounds the whole wait.
final class StarvationProbe: Sendable {
    /// How often a deadline of silence checks again while the process is behind.
    static let recheck: Duration = .milliseconds(50)

    /// A job that starts within this of being enqueued: the process is keeping up.
    private let promptWithin: Duration
    private let priority: TaskPriority
    /// Whether a probe is queued and has not run: one at a time, however far behind the process is.
    private let queued = Synchronization.Atomic<Bool>(false)

    init(priority: TaskPriority, promptWithin: Duration) {
        self.priority = priority
        self.promptWithin = promptWithin
    }

    /// Enqueues a probe (unless one is queued already) that calls `ifPrompt` if it starts within `promptWithin`.
    func send(ifPrompt: @escaping @Sendable () -> Void) {
        guard queued.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let sent = ContinuousClock.now
        Task(priority: priority) { [self] in
            let prompt = ContinuousClock.now - sent <= promptWithin
            queued.store(false, ordering: .relaxed)
            if prompt { ifPrompt() }
        }
    }
}

/// A result that the first of several racers sets; later ones are ignored.
final class OneShot<T: Sendable>: Sendable {
    private let state = NIOLockedValueBox<(result: Result<T, any Error>?, waiter: CheckedContinuation<T, any Error>?)>((nil, nil))

    func complete(_ result: Result<T, any Error>) {
        let waiter: CheckedContinuation<T, any Error>? = state.withLockedValue { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<T, any Error>? = state.withLockedValue { state in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}
