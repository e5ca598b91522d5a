import CoreMetrics
import Foundation
import Hummingbird
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The metrics of one service: a Prometheus registry behind swift-metrics.
///
/// Code records through swift-metrics (`Counter`, `Timer`, `Gauge` created with `factory`), so nothing
/// outside this file knows about Prometheus. Each application owns its registry, which keeps tests that
/// run several applications in one process from mixing their counts; `main` also bootstraps the global
/// `MetricsSystem` with the same factory so that metrics of libraries land in the same exposition.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory
    private let processMetrics: ProcessMetrics
    private let httpMetrics: NIOLockedValueBox<[HTTPMetricKey: (Metrics.Counter, Metrics.Timer)]> = .init([:])

    public init(service: String) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Latency buckets from 1 ms to 10 s; the library's default starts at 5 ms, too coarse for health probes.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = factory
        self.processMetrics = ProcessMetrics(registry: registry)
        registry.makeGauge(
            descriptor: .init(
                namespace: "code", metricName: "build", unitName: "info", helpText: "Build of the running service; the value is always 1."),
            labels: [("service", service), ("version", BuildInfo.version), ("revision", BuildInfo.revision)]
        ).set(1.0)
    }

    /// Makes this registry the destination of the global swift-metrics API. Call once per process.
    public func bootstrapGlobalMetricsSystem() {
        MetricsSystem.bootstrap(factory)
    }

    /// Prometheus text exposition, with process metrics read at scrape time.
    public func exposition() -> [UInt8] {
        processMetrics.update()
        return registry.emitToBuffer()
    }

    struct HTTPMetricKey: Hashable {
        let method: String
        let route: String
        let status: Int
    }

    /// `http_requests_total{method,route,status}` and `http_request_duration_seconds{method,route,status}`.
    /// `route` is the route template (`/v1/deployments/{id}`), never the raw path, so cardinality stays bounded.
    func recordRequest(method: String, route: String, status: Int, duration: Duration) {
        let key = HTTPMetricKey(method: method, route: route, status: status)
        let (counter, timer) = httpMetrics.withLockedValue { cache in
            if let metrics = cache[key] { return metrics }
            let dimensions = [("method", method), ("route", route), ("status", String(status))]
            let metrics = (
                Metrics.Counter(label: "http_requests_total", dimensions: dimensions, factory: factory),
                Metrics.Timer(label: "http_request_duration_seconds", dimensions: dimensions, factory: factory)
            )
            cache[key] = metrics
            return metrics
        }
        counter.increment()
        timer.record(duration: duration)
    }

    /// A router serving `GET /metrics`, for the separate metrics listener.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: self.exposition()))
            )
        }
        return router
    }
}
