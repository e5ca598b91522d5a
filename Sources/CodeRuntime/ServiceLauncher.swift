import ArgumentParser
import CodeConfiguration
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// Starts a service process: configuration, `--health-check`, logging and metrics bootstrap, and a
/// `ServiceGroup` that turns SIGTERM and SIGINT into a graceful shutdown bounded by `SHUTDOWN_TIMEOUT`.
public struct ServiceLauncher: Sendable {
    public let name: String
    public let defaultPort: Int

    public init(name: String, defaultPort: Int) {
        self.name = name
        self.defaultPort = defaultPort
    }

    /// Answers `--health-check` when it is set, else serves: `serve` is the command's `ServiceCommand.serve`,
    /// which is also what the command runs without arguments.
    public func main(options: ServiceOptions, serve: () async throws -> Void) async throws {
        if options.healthCheck {
            let code = await healthCheck()
            throw ExitCode(code)
        }
        try await serve()
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
        // First, before any of the service's work: see EventLoopExecutor.
        _ = EventLoopExecutor.isInstalled
        let runtime = ServiceRuntime(name: name, settings: runtimeSettings)
        runtime.metrics.bootstrapGlobalMetricsSystem()
        // Before `build`: the HTTP clients it creates take the tracer when they are configured.
        var exporters: [any Service] = []
        if runtimeSettings.tracing {
            do {
                exporters.append(try ServiceTracing.bootstrap(service: name, logger: runtime.logger))
            } catch {
                Self.printError("\(name): configuration error: OTEL_*: \(error)")
                throw ExitCode(ConfigurationError.exitCode)
            }
        }
        do {
            let app = try await build(settings, runtime)
            try await serve(app, before: exporters, runtime: runtime, runtimeSettings: runtimeSettings)
        } catch let error as any ExitCodeError {
            // E.g. a database migrated by a newer version: one line and its own exit code, not a crash.
            Self.printError("\(name): \(error)")
            throw ExitCode(error.exitCode)
        }
    }

    private func serve<App: ApplicationProtocol & Service>(
        _ app: App, before supporting: [any Service], runtime: ServiceRuntime, runtimeSettings: RuntimeSettings
    ) async throws {
        runtime.logger.info(
            "starting",
            metadata: [
                "version": .string(BuildInfo.version),
                "revision": .string(BuildInfo.revision),
                "address": .string("\(runtimeSettings.host):\(runtimeSettings.port)"),
                "metrics_port": .string(runtimeSettings.metricsPort.map(String.init) ?? "disabled"),
                "tracing": .string(runtimeSettings.tracing ? "otlp" : "off"),
                "executor": .string(EventLoopExecutor.isInstalled ? "event-loops" : "default"),
            ]
        )
        try await runtime.makeServiceGroup(app, after: supporting, signals: [.sigterm, .sigint]).run()
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
