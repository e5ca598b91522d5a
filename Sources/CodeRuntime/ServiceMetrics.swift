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
            descriptor: .init(namespace: "code", metricName: "build", unitName: "info", helpText: "Build of the running service; the value is always 1."),
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

/// The standard Prometheus process metrics, read from /proc at scrape time (Linux; elsewhere only the
/// start time is reported).
final class ProcessMetrics: Sendable {
    private let residentMemory: Prometheus.Gauge
    private let virtualMemory: Prometheus.Gauge
    private let cpuSeconds: Prometheus.Counter
    private let openFileDescriptors: Prometheus.Gauge
    private let maxFileDescriptors: Prometheus.Gauge
    private let reportedCPUSeconds = NIOLockedValueBox<Double>(0)

    init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "process", metricName: metric, unitName: unit, helpText: help)
        }
        residentMemory = registry.makeGauge(descriptor: name("resident_memory", "bytes", "Resident memory size in bytes."))
        virtualMemory = registry.makeGauge(descriptor: name("virtual_memory", "bytes", "Virtual memory size in bytes."))
        cpuSeconds = registry.makeCounter(descriptor: name("cpu_seconds", "total", "Total user and system CPU time spent in seconds."))
        openFileDescriptors = registry.makeGauge(descriptor: name("open", "fds", "Number of open file descriptors."))
        maxFileDescriptors = registry.makeGauge(descriptor: name("max", "fds", "Maximum number of open file descriptors."))
        registry.makeGauge(descriptor: name("start_time", "seconds", "Start time of the process since unix epoch in seconds."))
            .set(Self.startTime() ?? Date.now.timeIntervalSince1970)
        update()
    }

    func update() {
        #if os(Linux)
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let fields = Self.statFields() {
            // Fields after the command name: 14 utime, 15 stime, 23 vsize, 24 rss (1-based, proc(5)).
            let utime = Double(fields[11]) ?? 0
            let stime = Double(fields[12]) ?? 0
            virtualMemory.set(Double(fields[20]) ?? 0)
            residentMemory.set((Double(fields[21]) ?? 0) * pageSize)
            let total = (utime + stime) / ticksPerSecond
            reportedCPUSeconds.withLockedValue { reported in
                if total > reported {
                    cpuSeconds.increment(by: total - reported)
                    reported = total
                }
            }
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFileDescriptors.set(Double(entries.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            maxFileDescriptors.set(Double(limit.rlim_cur))
        }
        #endif
    }

    /// /proc/self/stat fields from the third (state) on; the command name in parentheses may contain spaces.
    private static func statFields() -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let end = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        return fields.count > 21 ? fields : nil
    }

    private static func startTime() -> Double? {
        #if os(Linux)
        guard let fields = statFields(), let startTicks = Double(fields[19]),
              let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let bootLine = stat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
              let bootTime = Double(bootLine.dropFirst(6).trimmingCharacters(in: .whitespaces))
        else { return nil }
        return bootTime + startTicks / Double(sysconf(Int32(_SC_CLK_TCK)))
        #else
        return nil
        #endif
    }
}
