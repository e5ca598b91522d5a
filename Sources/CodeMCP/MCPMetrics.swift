import CoreMetrics
import Metrics

/// code-mcp's metrics.
struct MCPMetrics: Sendable {
    let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
        // Counters exported at 0 from the start: `increase()` sees the first refusal of a process's life only
        // if the series existed before it.
        sessionsRejected.increment(by: 0)
    }

    /// `code_mcp_sessions_open`
    var sessionsOpen: Meter { Meter(label: "code_mcp_sessions_open", factory: factory) }
    /// `code_mcp_sessions_limit`: `MCP_MAX_SESSIONS`, so alerts compare against the configured limit.
    var sessionsLimit: Gauge { Gauge(label: "code_mcp_sessions_limit", factory: factory) }
    /// `code_mcp_sessions_rejected_total`: new sessions refused (503) at the limit.
    var sessionsRejected: Counter { Counter(label: "code_mcp_sessions_rejected_total", factory: factory) }

    /// `code_mcp_tool_calls_total{tool,outcome}` and `code_mcp_tool_call_duration_seconds{tool}`.
    func recordToolCall(_ tool: String, known: Set<String>, outcome: String, since start: ContinuousClock.Instant) {
        // Unknown tool names would be unbounded label values.
        let label = known.contains(tool) ? tool : "unknown"
        Counter(label: "code_mcp_tool_calls_total", dimensions: [("tool", label), ("outcome", outcome)], factory: factory).increment()
        Metrics.Timer(label: "code_mcp_tool_call_duration_seconds", dimensions: [("tool", label)], factory: factory)
            .record(duration: ContinuousClock.now - start)
    }
}
