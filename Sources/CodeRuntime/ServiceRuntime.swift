import ArgumentParser
import AsyncHTTPClient
import CodeConfiguration
import Foundation
import Hummingbird
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
            configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: name),
            logger: logger
        )
        if let metricsPort = settings.metricsPort {
            app.addServices(
                Application(
                    router: metrics.makeRouter(),
                    configuration: .init(address: .hostname(settings.host, port: metricsPort), serverName: name),
                    logger: logger
                )
            )
        }
        app.addServices(services)
        return app
    }
}

extension ServiceRuntime {
    /// The group that runs a service: `signals` start a graceful shutdown in which the HTTP server stops
    /// accepting connections and lets in-flight requests finish; after `SHUTDOWN_TIMEOUT` what is left is
    /// cancelled.
    public func makeServiceGroup(_ service: some Service, signals: [UnixSignal] = []) -> ServiceGroup {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: service)],
            gracefulShutdownSignals: signals,
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = settings.shutdownTimeout
        // After the drain time, cancellation must be quick: the orchestrator's SIGKILL follows soon.
        configuration.maximumCancellationDuration = .seconds(2)
        return ServiceGroup(configuration: configuration)
    }
}

/// Starts a service process: configuration, `--health-check`, logging and metrics bootstrap, and a
/// `ServiceGroup` that turns SIGTERM and SIGINT into a graceful shutdown bounded by `SHUTDOWN_TIMEOUT`.
public struct ServiceLauncher: Sendable {
    public let name: String
    public let defaultPort: Int

    public init(name: String, defaultPort: Int) {
        self.name = name
        self.defaultPort = defaultPort
    }

    /// Runs the service until a signal stops it, or answers `--health-check`.
    public func main<Settings: Sendable, App: ApplicationProtocol & Service>(
        options: ServiceOptions,
        configure: (EnvironmentSettings) throws(ConfigurationError) -> Settings,
        build: (Settings, ServiceRuntime) async throws -> App
    ) async throws {
        if options.healthCheck {
            let code = await healthCheck()
            throw ExitCode(code)
        }
        try await run(configure: configure, build: build)
    }

    /// Runs the service until a signal stops it.
    ///
    /// - Parameters:
    ///   - configure: reads the service's own settings; a `ConfigurationError` ends the process with 78.
    ///   - build: builds the application (the same `buildApplication` tests call).
    public func run<Settings: Sendable, App: ApplicationProtocol & Service>(
        configure: (EnvironmentSettings) throws(ConfigurationError) -> Settings,
        build: (Settings, ServiceRuntime) async throws -> App
    ) async throws {
        let environment = EnvironmentSettings()
        let runtimeSettings: RuntimeSettings
        let settings: Settings
        do {
            runtimeSettings = try RuntimeSettings(from: environment, defaultPort: defaultPort)
            settings = try configure(environment)
        } catch {
            Self.printError("\(name): configuration error: \(error)")
            throw ExitCode(ConfigurationError.exitCode)
        }

        runtimeSettings.bootstrapLogging()
        let runtime = ServiceRuntime(name: name, settings: runtimeSettings)
        runtime.metrics.bootstrapGlobalMetricsSystem()
        let app = try await build(settings, runtime)

        runtime.logger.info(
            "starting",
            metadata: [
                "version": .string(BuildInfo.version),
                "revision": .string(BuildInfo.revision),
                "address": .string("\(runtimeSettings.host):\(runtimeSettings.port)"),
                "metrics_port": .string(runtimeSettings.metricsPort.map(String.init) ?? "disabled"),
            ]
        )
        try await runtime.makeServiceGroup(app, signals: [.sigterm, .sigint]).run()
        runtime.logger.info("stopped")
    }

    /// `--health-check`: GET `/health/ready` of this service on loopback with a 2 s timeout. Prints one line;
    /// returns 0 when ready and 1 otherwise (Docker's HEALTHCHECK reads 1 as unhealthy).
    public func healthCheck(environment: EnvironmentSettings = .init()) async -> Int32 {
        let port: Int
        let host: String
        do {
            let settings = try RuntimeSettings(from: environment, defaultPort: defaultPort)
            port = settings.port
            // A wildcard listener answers on loopback; a specific address only on itself.
            host = ["0.0.0.0", "::", "[::]", ""].contains(settings.host) ? "127.0.0.1" : settings.host
        } catch {
            print("\(name): unhealthy: configuration error: \(error)")
            return 1
        }
        let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/health/ready"
        let outcome = await HealthProbe.probe(url: url, timeout: .seconds(2))
        print("\(name): \(outcome.healthy ? "healthy" : "unhealthy"): \(url) \(outcome.summary)")
        return outcome.healthy ? 0 : 1
    }

    static func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// One HTTP GET with a deadline, for health checks of this and other services.
public enum HealthProbe {
    public struct Outcome: Sendable {
        public let healthy: Bool
        public let status: Int?
        public let summary: String
        /// The answer's body (at most 64 KiB), e.g. a readiness report.
        public let body: Data?
    }

    public static func probe(url: String, timeout: Duration, client: HTTPClient = .shared) async -> Outcome {
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .GET
            let response = try await client.execute(request, timeout: TimeAmount(timeout))
            let status = Int(response.status.code)
            let body = try? await response.body.collect(upTo: 64 * 1024)
            return Outcome(healthy: (200..<300).contains(status), status: status, summary: "HTTP \(status)", body: body.map { Data(buffer: $0) })
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            return Outcome(healthy: false, status: nil, summary: "no answer within \(timeout)", body: nil)
        } catch {
            return Outcome(healthy: false, status: nil, summary: "\(error)", body: nil)
        }
    }
}

/// Options every service executable accepts.
public struct ServiceOptions: ParsableArguments {
    @Flag(help: "Check readiness of the service running on this host (GET /health/ready on PORT, 2 s timeout); exit 0 when ready, 1 otherwise. The HEALTHCHECK of images without a shell.")
    public var healthCheck = false

    public init() {}
}
