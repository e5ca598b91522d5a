import CodeTestSupport
import Foundation
import Testing

/// The three executables as an orchestrator sees them: real processes, real ports, real signals.
@Suite("Service executables")
struct ServiceExecutableTests {
    static let services = ["code-api", "code-worker", "code-mcp"]

    /// Environment a service needs to start on its own in a temporary directory.
    static func environment(for service: String, port: Int, metricsPort: Int, directory: URL) -> [String: String] {
        var environment = ["HOST": "127.0.0.1", "PORT": String(port), "METRICS_PORT": String(metricsPort), "SHUTDOWN_TIMEOUT": "5"]
        environment.merge(ServiceFixtures.minimalEnvironment(for: service, directory: directory)) { current, _ in current }
        return environment
    }

    @Test(arguments: services)
    func versionNamesTheExecutable(service: String) async throws {
        let result = try await ServiceProcess.run(service, arguments: ["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("\(service) "))
    }

    @Test(arguments: services)
    func invalidConfigurationExits78WithOneLineNamingTheVariable(service: String) async throws {
        let result = try await ServiceProcess.run(service, environment: ["PORT": "not-a-port"])
        #expect(result.status == 78)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("PORT: expected an integer") == true, "\(result.stderr)")
    }

    @Test(arguments: services)
    func servesHealthAndMetricsAnswersHealthCheckAndStopsOnSIGTERM(service: String) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = freePort()
        let metricsPort = freePort()
        var environment = Self.environment(for: service, port: port, metricsPort: metricsPort, directory: directory)
        // code-mcp is ready when code-api is: give it one.
        var companion: ServiceProcess?
        defer { companion?.stop() }
        if service == "code-mcp" {
            let apiPort = freePort()
            companion = try ServiceProcess(
                "code-api", environment: Self.environment(for: "code-api", port: apiPort, metricsPort: 0, directory: directory))
            _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(apiPort)/health/ready")
            environment["CODE_API_URL"] = "http://127.0.0.1:\(apiPort)"
        }
        let process = try ServiceProcess(service, environment: environment)
        defer { process.stop() }

        _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/live", since: process.launchedAt)

        let metrics = try await LoopbackHTTP.request(.GET, "http://127.0.0.1:\(metricsPort)/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("# TYPE process_resident_memory_bytes gauge"))
        #expect(metrics.text.contains(#"code_build_info{service="\#(service)""#))

        let healthy = try await ServiceProcess.run(service, arguments: ["--health-check"], environment: environment)
        #expect(healthy.status == 0, "\(healthy.stdout)")
        #expect(healthy.stdout.split(separator: "\n").count == 1)
        #expect(healthy.stdout.contains("healthy"))

        process.signal(SIGTERM)
        let status = await process.waitForExit(timeout: .seconds(8))
        #expect(status == 0, "exit status after SIGTERM; output: \(process.standardOutput)")

        // JSON logs: every line parses and names the service.
        let lines = process.standardOutput.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(record?["level"] != nil, "not a JSON log line: \(line)")
        }

        let closed = try await ServiceProcess.run(service, arguments: ["--health-check"], environment: environment)
        #expect(closed.status == 1)
        #expect(closed.stdout.contains("unhealthy"))
    }
}

@Suite("Service executables when they cannot serve")
struct ServiceStartupFailureTests {
    /// A port already taken makes the service group cancel everything: each service must end (non-zero,
    /// promptly) rather than keep its loops running without a server.
    @Test(arguments: ServiceExecutableTests.services)
    func takenPortEndsTheProcessWithAnError(service: String) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = freePort()
        let occupant = try ServiceProcess(
            "code-api", environment: ServiceExecutableTests.environment(for: "code-api", port: port, metricsPort: 0, directory: directory))
        defer { occupant.stop() }
        _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/live")

        let second = try ServiceProcess(
            service, environment: ServiceExecutableTests.environment(for: service, port: port, metricsPort: 0, directory: directory))
        defer { second.stop() }
        let status = await second.waitForExit(timeout: .seconds(15))
        #expect(status != nil && status != 0, "\(service) must exit with an error; output: \(second.standardOutput.suffix(2000))")
        let lines = second.standardOutput.split(separator: "\n").count
        #expect(lines < 100, "\(service) wrote \(lines) log lines: a loop kept running without a server")
    }

    /// An orchestrator stops a task that never became ready (the database unreachable, the services
    /// retrying their migrations): SIGTERM then is a graceful stop like any other, exit 0 and no error.
    @Test(arguments: ["code-api", "code-worker"])
    func sigtermWhileTheDatabaseCannotBeReachedIsAGracefulStop(service: String) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var environment = ServiceExecutableTests.environment(for: service, port: freePort(), metricsPort: 0, directory: directory)
        // A port nobody listens on: every connection attempt is refused, and the pool keeps trying.
        environment["DATABASE_URL"] = "postgres://code@127.0.0.1:\(freePort())/code"
        environment["DATABASE_PASSWORD"] = "unused"
        let process = try ServiceProcess(service, environment: environment)
        defer { process.stop() }

        let deadline = ContinuousClock.now + .seconds(20)
        while !process.standardOutput.contains("Connection creation failed"), process.isRunning, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(process.standardOutput.contains("Connection creation failed"), "\(process.standardOutput.suffix(2000))")
        #expect(process.isRunning, "\(service) must wait for the database, not exit: \(process.standardError)")

        process.signal(SIGTERM)
        let status = await process.waitForExit(timeout: .seconds(8))
        #expect(status == 0, "exit status after SIGTERM; stderr: \(process.standardError.suffix(2000))")
        #expect(!process.standardError.contains("Error"), "\(process.standardError.suffix(2000))")
        #expect(!process.standardOutput.contains(#""level":"error""#), "\(process.standardOutput.suffix(3000))")
    }
}
