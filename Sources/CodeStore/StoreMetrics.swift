import CoreMetrics
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Tracing

/// `code_db_query_duration_seconds{operation,backend}` around store operations, the deadline of each, and,
/// inside a traced operation, a client span for each transaction that writes.
struct StoreMetrics: Sendable {
    let backend: String
    let factory: (any MetricsFactory)?
    /// How long an operation may take before the store gives up with `StoreError.unavailable`. PostgreSQL's
    /// pool waits for a connection as long as the server is down; without a deadline, every request would
    /// hang instead of answering 503. (SQLite has its busy timeout.)
    let deadline: Duration?
    /// Maps the driver's errors that mean "the database cannot be reached" to `StoreError.unavailable`.
    let unavailable: @Sendable (any Error) -> String?
    /// One timer per operation: creating one looks it up in the metrics factory, which is too slow for
    /// every query.
    private let timers = NIOLockedValueBox<[String: Metrics.Timer]>([:])

    init(
        backend: String, factory: (any MetricsFactory)?, deadline: Duration? = nil,
        unavailable: @escaping @Sendable (any Error) -> String? = { _ in nil }
    ) {
        self.backend = backend
        self.factory = factory
        self.deadline = deadline
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
        do {
            guard let deadline else { return try await body() }
            return try await StoreDeadline.run(deadline, operation: operation, body)
        } catch StoreDeadline.Exceeded.exceeded {
            throw StoreError.unavailable("no answer within \(deadline.map { "\($0)" } ?? "?") (\(operation))")
        } catch {
            if let reason = unavailable(error) { throw StoreError.unavailable(reason) }
            throw error
        }
    }
}

/// Runs an operation with a deadline that holds even when the operation ignores cancellation: the caller
/// gets `StoreError.unavailable` at the deadline, and the operation (cancelled) ends in the background.
/// The outcome of a write that times out is unknown (it may still commit); every write the store does is
/// guarded or idempotent, so a retry is safe.
public enum StoreDeadline {
    /// What `run` throws at the deadline; the store's operations turn it into `StoreError.unavailable`.
    public enum Exceeded: Error { case exceeded }

    /// Runs `body`, throwing `Exceeded.exceeded` when it takes longer than `limit`.
    public static func run<T: Sendable>(
        _ limit: Duration, operation: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let outcome = OneShot<T>()
        let work = Task {
            do { outcome.complete(.success(try await body())) } catch { outcome.complete(.failure(error)) }
        }
        // The deadline is a timer on an event loop (an entry in its timer heap), not a task that sleeps:
        // `Task.sleep` goes through Dispatch's timer thread, a thread switch for every operation
        // (CodeRuntime's LoopTimer, docs/performance.md).
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(limit)) {
            outcome.complete(.failure(Exceeded.exceeded))
            work.cancel()
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
