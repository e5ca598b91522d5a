import CoreMetrics
import Metrics

/// The worker's metrics, recorded through swift-metrics into the service's Prometheus registry.
struct WorkerMetrics: Sendable {
    let factory: any MetricsFactory

    init(factory: any MetricsFactory) {
        self.factory = factory
        // Counters the alerts read with `increase()` are exported at 0 from the start: a series that appears
        // at its first increment (already 1) shows no increase, and the first event of a process's life would
        // not alert.
        for firstAttempt in [true, false] { claims(firstAttempt: firstAttempt).increment(by: 0) }
        for outcome in PipelineOutcome.allCases { finished(outcome.rawValue).increment(by: 0) }
        failedExhausted.increment(by: 0)
        leasesLost.increment(by: 0)
    }

    /// `code_worker_claims_total{attempt}`: `first`, or `retry` for a deployment that ran before (a takeover
    /// after a crash or an expired lease, a release at shutdown, or a failure being retried).
    func claims(firstAttempt: Bool) -> Counter {
        Counter(label: "code_worker_claims_total", dimensions: [("attempt", firstAttempt ? "first" : "retry")], factory: factory)
    }
    /// `code_worker_failed_exhausted_total`: deployments housekeeping failed after their last allowed attempt.
    var failedExhausted: Counter { Counter(label: "code_worker_failed_exhausted_total", factory: factory) }
    /// `code_worker_finished_total{outcome}`: succeeded, failed, cancelled, released, lease_lost, abandoned.
    func finished(_ outcome: String) -> Counter {
        Counter(label: "code_worker_finished_total", dimensions: [("outcome", outcome)], factory: factory)
    }
    /// `code_worker_step_duration_seconds{step,outcome}`
    func stepDuration(_ step: String, outcome: String) -> Timer {
        Timer(label: "code_worker_step_duration_seconds", dimensions: [("step", step), ("outcome", outcome)], factory: factory)
    }
    /// `code_worker_queue_depth`: queued deployments, as this worker last saw them.
    var queueDepth: Gauge { Gauge(label: "code_worker_queue_depth", factory: factory) }
    /// `code_worker_queue_oldest_age_seconds`: how long the oldest queued deployment has waited (0 when none).
    var queueOldestAge: Gauge { Gauge(label: "code_worker_queue_oldest_age_seconds", factory: factory) }
    /// `code_worker_in_flight`: pipelines running in this process.
    var inFlight: Meter { Meter(label: "code_worker_in_flight", factory: factory) }
    /// `code_worker_leases_lost_total`
    var leasesLost: Counter { Counter(label: "code_worker_leases_lost_total", factory: factory) }
    /// `code_worker_webhook_attempts_total{result}`: success, client_error, server_error, redirect, timeout,
    /// network_error.
    func webhookAttempts(_ result: String) -> Counter {
        Counter(label: "code_worker_webhook_attempts_total", dimensions: [("result", result)], factory: factory)
    }
}
