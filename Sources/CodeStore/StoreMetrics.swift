import CoreMetrics
import Metrics
import NIOConcurrencyHelpers

/// `code_db_query_duration_seconds{operation,backend}` around store operations.
struct StoreMetrics: Sendable {
    let backend: String
    let factory: (any MetricsFactory)?
    /// One timer per operation: creating one looks it up in the metrics factory, which is too slow for
    /// every query.
    private let timers = NIOLockedValueBox<[String: Metrics.Timer]>([:])

    init(backend: String, factory: (any MetricsFactory)?) {
        self.backend = backend
        self.factory = factory
    }

    func measure<T>(_ operation: String, _ body: () async throws -> T) async throws -> T {
        guard let factory else { return try await body() }
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
        return try await body()
    }
}
