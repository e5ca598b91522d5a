import CodeDomain
import Metrics

/// Metrics of code-api beyond the runtime's HTTP metrics.
struct APIMetrics: Sendable {
    let factory: any MetricsFactory

    /// `code_deployments_created_total{environment}`
    func deploymentsCreated(_ environment: DeploymentEnvironment) -> Counter {
        Counter(label: "code_deployments_created_total", dimensions: [("environment", environment.rawValue)], factory: factory)
    }

    /// `code_auth_failures_total{reason}`: missing, malformed, unknown, revoked, forbidden.
    func authFailures(_ reason: String) -> Counter {
        Counter(label: "code_auth_failures_total", dimensions: [("reason", reason)], factory: factory)
    }
}
