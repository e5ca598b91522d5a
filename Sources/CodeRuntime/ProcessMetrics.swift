import Foundation
import NIOConcurrencyHelpers
import Prometheus

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
