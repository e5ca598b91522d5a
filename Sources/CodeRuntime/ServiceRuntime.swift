import ArgumentParser
import AsyncHTTPClient
import CodeConfiguration
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// What a service's `buildApplication` gets from the runtime: its settings, logger, metrics and health checks.
public struct ServiceRuntime: Sendable {
    public let name: String
    public let settings: RuntimeSettings
    public let logger: Logger
    public let metrics: ServiceMetrics
    public let health: HealthChecks
    /// Filled by `makeApplication` from the router, for 405 answers.
    let routes = RouteTable()

    public init(name: String, settings: RuntimeSettings, logger: Logger? = nil) {
        self.name = name
        self.settings = settings
        self.logger = logger ?? settings.makeLogger(label: name)
        self.metrics = ServiceMetrics(service: name)
        self.health = HealthChecks(service: name)
    }

    /// A router with the telemetry middleware and the health routes already in place. Add the service's
    /// own routes (and its authentication, on route groups) after this.
    public func makeRouter<Context: RequestContext>(context: Context.Type = BasicRequestContext.self) -> Router<Context> {
        let router = Router(context: Context.self)
        // Outermost, so the request's span is current in the telemetry middleware and its log lines.
        if settings.tracing { router.add(middleware: ServerSpanMiddleware()) }
        router.add(middleware: RequestTelemetryMiddleware(metrics: metrics, routes: routes))
        health.addRoutes(to: router)
        return router
    }

    /// The application listening on `HOST:PORT`. The metrics listener (when `METRICS_PORT` is not 0) runs as
    /// one of its services, so it starts and stops with the application.
    public func makeApplication<Context: RequestContext>(
        router: Router<Context>,
        services: [any Service] = []
    ) -> Application<RouterResponder<Context>> where Context.Source == ApplicationRequestContextSource {
        routes.load(router.routes.map { (path: $0.path.description, method: $0.method.rawValue) })
        var app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: name),
            logger: logger
        )
        if let metricsPort = settings.metricsPort {
            app.addServices(
                Application(
                    router: metrics.makeRouter(),
                    server: server,
                    configuration: .init(address: .hostname(settings.metricsHost, port: metricsPort), serverName: name),
                    logger: logger
                )
            )
        }
        app.addServices(services)
        return app
    }

    /// HTTP/1.1 with the idle timeout: without one, a client that opens connections and sends nothing (or a
    /// request head a byte at a time) holds them forever.
    private var server: HTTPServerBuilder {
        .http1(configuration: .init(idleTimeout: TimeAmount(settings.idleTimeout)))
    }
}

extension ServiceRuntime {
    public static let supportingShutdownReserve: Duration = .seconds(2)

    /// The group that runs a service: `signals` start a graceful shutdown in which the HTTP server stops
    /// accepting connections and lets in-flight requests finish; after `SHUTDOWN_TIMEOUT` what is left is
    /// cancelled. `supporting` services (the span exporter) start first and stop after `service`, with
    /// `supportingShutdownReserve` more: a drain that uses all of `SHUTDOWN_TIMEOUT` still leaves the exporter
    /// time to send the spans of the work it released.
    public func makeServiceGroup(_ service: some Service, after supporting: [any Service] = [], signals: [UnixSignal] = []) -> ServiceGroup
    {
        var configuration = ServiceGroupConfiguration(
            // A supporting service that ends or fails (the span exporter) must not stop the service it supports.
            services: supporting.map { .init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore) }
                + [.init(service: service)],
            gracefulShutdownSignals: signals,
            logger: logger
        )
        let reserve = supporting.isEmpty ? Duration.zero : Self.supportingShutdownReserve
        configuration.maximumGracefulShutdownDuration = settings.shutdownTimeout + reserve
        // After the drain time, cancellation must be quick: the orchestrator's SIGKILL follows soon.
        configuration.maximumCancellationDuration = .seconds(2)
        return ServiceGroup(configuration: configuration)
    }
}
