import CodeTiming
import CoreMetrics
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
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
            // The answer is recorded where it arrives, in the operation's own task, not when the caller has
            // resumed: one hop sooner for the other operations' silence.
            return try await StoreDeadline.run(patience, since: start, operation: operation) { [unavailable] in
                do {
                    let value = try await body()
                    patience.answered()
                    return value
                } catch {
                    // The server answered, if with an error (a constraint, a serialization failure). Not an
                    // operation that was given up (cancelled): the pool's error for the connection it was
                    // still waiting for is no answer, and counting it restarted every other operation's
                    // silence (the restart drill's request waited two deadlines, 2.95 s).
                    if unavailable(error) == nil && !(error is CancellationError) && !Task.isCancelled { patience.answered() }
                    throw error
                }
            }
        } catch StoreDeadline.Exceeded.exceeded {
            let waited = (NIODeadline.now() - start).nanoseconds / 1_000_000
            throw StoreError.unavailable(
                "no answer after \(waited) ms (\(operation)): "
                    + "the server answered nothing for \(patience.silence), or the operation passed \(patience.ceiling)")
        } catch {
            if let reason = unavailable(error) { throw StoreError.unavailable(reason) }
            throw error
        }
    }
}

/// When an operation on a database server gives up: once the server has answered nothing, to this
/// operation or any other of the process, for `silence`, and this process is seen keeping up with its own
/// work; and in any case after `ceiling`.
///
/// Why not one fixed deadline: under load, operations queue for the pool's connections, and a queue longer
/// than the deadline turned a busy server into 503s. CI's load drill on PostgreSQL (256 connections against
/// a debug build) had 118 of ~2,300 creates answer 503 after 1.5 s in the pool's queue while the server
/// answered other operations all along. What the deadline is for is a server that is down or cannot be
/// reached: then nothing answers, and every operation gives up `silence` after the last answer (a request
/// made while the server is down: `silence` after it began). `ceiling` bounds the wait of one operation on
/// a server that answers others (a lock held elsewhere, a queue that does not move for it).
///
/// Why "seen keeping up": the deadline's timer fires on an event loop, but an answer the driver has read
/// resumes its operation through Swift's executor, which a process with more ready work than cores runs
/// late; in a full test run (every test case at once, one debug process, two cores) a job started a median
/// 125 ms and up to 2.3 s after it was enqueued. An answer waiting in that queue is not silence. So once
/// the silence limit has passed, the first timer to see it enqueues a probe on every event loop (with the
/// loops as the global executor, each loop runs its own queue of jobs, and an answer waits in its
/// connection's loop's), and operations give up only after a round of probes sent after their silence
/// began has started within `promptWithin` on every loop, and each probe has then yielded twice, going to
/// the back of its queue again behind the jobs that the jobs before it queued: by then an answer that was
/// waiting has reached its operation. A round that starts late means the process was behind; a timer after
/// it has finished sends another.
final class ServerSilence: Sendable {
    let silence: Duration
    let ceiling: Duration
    /// A probe that starts within this of being sent finds its loop keeping up: a quarter of the silence.
    let promptWithin: Duration
    /// How often an operation past its silence looks again, for a round of probes to finish.
    static let recheckInterval: Duration = .milliseconds(20)
    /// How long after a round's last probe finished a job that ran beside it is taken to have finished.
    private static let jobsBesideProbes = TimeAmount.milliseconds(10)
    /// A wait shorter than a millisecond is not worth a timer.
    private static let shortestWait = TimeAmount.milliseconds(1)

    /// When any operation last had an answer, in `NIODeadline` uptime nanoseconds. Relaxed: a read that
    /// misses an answer a moment old sees the silence begin that much sooner, and the round of probes the
    /// operation then needs takes longer than that moment.
    private let lastAnswer: Synchronization.Atomic<UInt64>
    /// The last round of probes that all started in time: when it was sent and when its last probe finished
    /// (`NIODeadline`s; none yet: the distant past).
    private let keptUp = NIOLockedValueBox((sent: NIODeadline.distantPast, finished: NIODeadline.distantPast))
    /// Whether a round of probes is out: one at a time, however far behind the process is.
    private let probing = Synchronization.Atomic<Bool>(false)

    init(silence: Duration, ceiling: Duration) {
        self.silence = silence
        self.ceiling = ceiling
        promptWithin = silence / 4
        lastAnswer = Synchronization.Atomic(NIODeadline.now().uptimeNanoseconds)
    }

    /// An operation had an answer from the server: the server is there.
    func answered() {
        lastAnswer.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }

    /// What an operation that began at `start` (at `priority`, which the probes take) does now: wait (how
    /// much longer), or give up. Past the silence limit without a round of probes that shows the process
    /// keeping up since, it sends one (unless one is out) and waits `recheckInterval`.
    func verdict(since start: NIODeadline, priority: TaskPriority) -> StoreDeadline.Verdict {
        let now = NIODeadline.now()
        let untilCeiling = start + TimeAmount(ceiling) - now
        guard untilCeiling >= Self.shortestWait else { return .giveUp }
        // Silence counts from the later of the operation's start and the last answer: an operation that
        // begins after a quiet spell still waits `silence` for an answer of its own.
        let heardOrStarted = max(start, NIODeadline.uptimeNanoseconds(lastAnswer.load(ordering: .relaxed)))
        let silentFrom = heardOrStarted + TimeAmount(silence)
        let untilSilence = silentFrom - now
        if untilSilence >= Self.shortestWait {
            return .wait(.nanoseconds(min(untilCeiling, untilSilence).nanoseconds))
        }
        // A round sent after the silence began started in time on every loop: the process runs its jobs,
        // and the answers that were waiting in them have had their turn. A loop runs its jobs one at a time,
        // so those queued before its probe had finished when it started; the runtime's own pool (the tests)
        // runs them on several threads, so one may still be running beside its probe: `jobsBesideProbes`.
        let round = keptUp.withLockedValue { $0 }
        if round.sent >= silentFrom {
            let sinceFinished = now - round.finished
            if sinceFinished >= Self.jobsBesideProbes { return .giveUp }
            return .wait(.nanoseconds(min(untilCeiling, Self.jobsBesideProbes - sinceFinished).nanoseconds))
        }
        sendProbes(priority: priority)
        return .wait(.nanoseconds(min(untilCeiling, TimeAmount(Self.recheckInterval)).nanoseconds))
    }

    /// Sends a task to the back of every event loop's queue of jobs, unless a round is out already; if every
    /// one starts within `promptWithin`, records the round in `keptUp`.
    private func sendProbes(priority: TaskPriority) {
        guard probing.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let sent = NIODeadline.now()
        let loops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        let round = ProbeRound(probes: loops.count)
        for loop in loops {
            // From the loop's own thread, the task joins that loop's queue (CodeRuntime's EventLoopExecutor);
            // in a process without it (the tests), the runtime's shared one.
            loop.execute {
                Task(priority: priority) { [self] in
                    let inTime = NIODeadline.now() - sent <= TimeAmount(promptWithin)
                    // An answer's first job can queue more before its operation has the answer: to the back
                    // of the queue again, twice, behind those.
                    await Task.yield()
                    await Task.yield()
                    guard round.finish(inTime: inTime) else { return }
                    if round.allInTime { keptUp.withLockedValue { $0 = (sent, NIODeadline.now()) } }
                    probing.store(false, ordering: .relaxed)
                }
            }
        }
    }
}

/// One round of `ServerSilence`'s probes: how many have yet to start, and whether all started in time.
private final class ProbeRound: Sendable {
    private let state: NIOLockedValueBox<(left: Int, allInTime: Bool)>

    init(probes: Int) { state = NIOLockedValueBox((probes, true)) }

    /// Records one probe; true for the round's last.
    func finish(inTime: Bool) -> Bool {
        state.withLockedValue { state in
            state.left -= 1
            state.allInTime = state.allInTime && inTime
            return state.left == 0
        }
    }

    var allInTime: Bool { state.withLockedValue { $0.allInTime } }
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
        case giveUp
    }

    /// Runs `body`, throwing `Exceeded.exceeded` when it takes longer than `limit`. A hard limit, kept
    /// whether or not the process is behind: the heartbeat's renewal must stop a pipeline before its lease
    /// runs out.
    public static func run<T: Sendable>(
        _ limit: Duration, operation: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await run(firstCheckAfter: limit, verdict: { .giveUp }, operation: operation, body)
    }

    /// Runs `body`, throwing `Exceeded.exceeded` when `patience` runs out (`ServerSilence`).
    static func run<T: Sendable>(
        _ patience: ServerSilence, since start: NIODeadline, operation: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let priority = Task.currentPriority
        guard case .wait(let first) = patience.verdict(since: start, priority: priority) else { throw Exceeded.exceeded }
        return try await run(
            firstCheckAfter: first, verdict: { patience.verdict(since: start, priority: priority) }, operation: operation, body)
    }

    private static func run<T: Sendable>(
        firstCheckAfter first: Duration, verdict: @escaping @Sendable () -> Verdict, operation: String,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = OneShot<T>()
        let work = Task {
            do { outcome.complete(.success(try await body())) } catch { outcome.complete(.failure(error)) }
        }
        // The deadline is a timer on an event loop (an entry in its timer heap), not a task that sleeps:
        // `Task.sleep` goes through Dispatch's timer thread, a thread switch for every operation (LoopTimer).
        let timer = LoopTimer.repeating(after: first) {
            if case .wait(let more) = verdict() { return more }
            outcome.complete(.failure(Exceeded.exceeded))
            work.cancel()
            return nil
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
