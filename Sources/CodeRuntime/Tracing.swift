import CodeConfiguration
import Hummingbird
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Distributed tracing: OpenTelemetry spans, exported over OTLP (HTTP or gRPC) by swift-otel and configured
/// by the standard `OTEL_*` variables (`OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`,
/// ...; swift-otel reads them).
///
/// Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. Off means no
/// tracer is bootstrapped, no server-span middleware is installed and nothing sets a trace context, so the
/// spans the code asks for (`withChildSpan`, the store's database spans) are skipped after one task-local
/// read.
public enum ServiceTracing {
    /// Whether the environment asks for traces: an OTLP endpoint is set, and neither `OTEL_SDK_DISABLED=true`
    /// nor `OTEL_TRACES_EXPORTER=none` turns them off.
    public static func isRequested(by settings: EnvironmentSettings) -> Bool {
        let endpoint = settings.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") ?? settings.string("OTEL_EXPORTER_OTLP_ENDPOINT")
        let disabled = settings.string("OTEL_SDK_DISABLED")?.lowercased() == "true"
        let noExporter = settings.string("OTEL_TRACES_EXPORTER")?.lowercased() == "none"
        return endpoint != nil && !disabled && !noExporter
    }

    /// Whether a tracer has been bootstrapped in this process.
    public static var isActive: Bool { !(InstrumentationSystem.tracer is NoOpTracer) }

    /// Bootstraps the process-wide tracer and returns the exporter's service, which must run for spans to
    /// leave the process. Run it before the application in the service group: the group stops services in
    /// reverse order, so the exporter stops last and flushes the spans of the last requests.
    ///
    /// Call before creating HTTP clients: async-http-client takes the tracer when a client is configured.
    static func bootstrap(service: String, logger: Logger) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = service
        configuration.resourceAttributes = ["service.version": BuildInfo.version]
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        // Metrics stay on Prometheus and logs on standard output; only traces go to the collector.
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        let (tracer, exporter) = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(tracer)
        return ExporterShutdownBudget(exporter, budget: exporterShutdownBudget, logger: logger)
    }

    /// How long the exporter may take to send its last spans once the service has stopped. Less than
    /// `ServiceRuntime.supportingShutdownReserve`, so the process still exits 0 when the drain used all of
    /// `SHUTDOWN_TIMEOUT`.
    static let exporterShutdownBudget: Duration = .milliseconds(1500)

    /// The log metadata provider that adds `trace_id` and `span_id` of the current span to every log line.
    static func loggingMetadataProvider() -> Logger.MetadataProvider {
        OTel.makeLoggingMetadataProvider()
    }
}

/// Runs the span exporter and ends it `budget` after its graceful shutdown starts, dropping what it has not sent.
///
/// swift-otel sends the last batches when it shuts down, and a collector that does not answer holds each
/// send for `OTEL_EXPORTER_OTLP_TIMEOUT` (10 s by default; async-http-client keeps retrying the connection
/// until then). With a batch in flight and one left to flush, that is 20 s: past the group's limit, where
/// cancellation that overruns is a crash, and past the orchestrator's SIGKILL. An unreachable collector
/// must cost spans, never a clean exit.
struct ExporterShutdownBudget: Service {
    let exporter: any Service
    let budget: Duration
    let logger: Logger

    init(_ exporter: any Service, budget: Duration, logger: Logger) {
        self.exporter = exporter
        self.budget = budget
        self.logger = logger
    }

    func run() async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await exporter.run()
                return true
            }
            group.addTask {
                // Throws CancellationError when the exporter ends first and cancels this task.
                try await gracefulShutdown()
                try await Task.sleep(for: budget)
                return false
            }
            let exporterEnded = try await group.next()!
            if !exporterEnded {
                logger.warning(
                    "span exporter stopped: the collector did not take the last spans in time",
                    metadata: ["budget": .stringConvertible(budget)])
            }
            // Cancels the exporter's sends (async-http-client gives up at once) or the budget's timer.
            group.cancelAll()
        }
    }
}

/// A W3C `traceparent` header value: how a trace context crosses a process boundary that is not an HTTP
/// request the libraries instrument (a deployment row from code-api to the worker, an MCP message from its
/// HTTP request to the session's handler).
public enum TraceParent {
    public static let headerName = "traceparent"

    /// The current span's context as a `traceparent` value; nil when nothing is traced.
    public static func current() -> String? {
        // The task-local first: with tracing off nothing sets it, and the tracer check takes a lock.
        guard let context = ServiceContext.current, ServiceTracing.isActive else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier[headerName]
    }

    /// The context a `traceparent` value names, for spans that continue its trace.
    public static func context(_ traceParent: String) -> ServiceContext {
        var context = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract([headerName: traceParent], into: &context, using: DictionaryExtractor())
        return context
    }
}

/// A span for `operation` as a child of the current span, or just `operation` when nothing is being traced
/// (tracing off, or work such as the worker's claim polling that belongs to no request).
public func withChildSpan<T>(
    _ name: String, ofKind kind: SpanKind = .internal, _ operation: ((any Span)?) async throws -> T
) async rethrows -> T {
    guard ServiceContext.current != nil else { return try await operation(nil) }
    return try await withSpan(name, ofKind: kind) { span in try await operation(span) }
}

/// A span for `operation` that continues the trace `traceParent` names (a new trace when it is nil), only
/// when tracing is on.
public func withSpan<T>(
    _ name: String, continuing traceParent: String?, ofKind kind: SpanKind, _ operation: ((any Span)?) async throws -> T
) async rethrows -> T {
    guard ServiceTracing.isActive else { return try await operation(nil) }
    let parent = traceParent.map(TraceParent.context) ?? .topLevel
    return try await withSpan(name, context: parent, ofKind: kind) { span in try await operation(span) }
}

/// Hummingbird's `TracingMiddleware` on every route but the health probes: orchestrators probe every few
/// seconds, and their traces would outnumber the ones anybody reads. No header is recorded on the span (the
/// request id too cost measurable throughput): the access log line has the request id with the trace id.
struct ServerSpanMiddleware<Context: RequestContext>: RouterMiddleware {
    private let tracing = TracingMiddleware<Context>()

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path.hasPrefix("/health") { return try await next(request, context) }
        return try await tracing.handle(request, context: context) { request, context in
            let response = try await next(request, context)
            // The telemetry middleware inside turns errors into problem responses, so TracingMiddleware never
            // sees a 5xx thrown: mark the span here.
            if response.status.code >= 500, let current = ServiceContext.current,
                let span = InstrumentationSystem.tracer.activeSpan(identifiedBy: current)
            {
                span.setStatus(SpanStatus(code: .error, message: "HTTP \(response.status.code)"))
            }
            return response
        }
    }
}

private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

private struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
