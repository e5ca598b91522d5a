import CodeTestSupport
import Foundation
import Testing

/// `code-services`, the multi-call binary the images run as `/app/service`: it picks the service by the
/// name it was started as, then CODE_SERVICE, then its first argument, and the service's command then
/// behaves exactly as that service's own executable (output and exit codes).
@Suite("Multi-call binary")
struct MultiCallTests {
    static let services = ["code-api", "code-worker", "code-mcp"]

    @Test(arguments: services)
    func codeServiceSelectsTheService(service: String) async throws {
        let result = try await ServiceProcess.run("code-services", arguments: ["--version"], environment: ["CODE_SERVICE": service])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("\(service) "))
    }

    @Test(arguments: services)
    func firstArgumentSelectsTheService(service: String) async throws {
        let result = try await ServiceProcess.run("code-services", arguments: [service, "--version"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("\(service) "))
    }

    @Test(arguments: services)
    func aLinkNamedAfterTheServiceRunsIt(service: String) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let link = directory.appendingPathComponent(service)
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: executableURL("code-services"))
        // The link's name wins over CODE_SERVICE.
        let result = try Self.run(link, arguments: ["--version"], environment: ["CODE_SERVICE": "code-api"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("\(service) "))
    }

    @Test(arguments: services)
    func exitCodesAreTheService(service: String) async throws {
        let invalid = try await ServiceProcess.run("code-services", environment: ["CODE_SERVICE": service, "PORT": "not-a-port"])
        #expect(invalid.status == 78)
        #expect(invalid.stderr.split(separator: "\n").count == 1, "\(invalid.stderr)")
        #expect(invalid.stderr.contains("PORT: expected an integer"), "\(invalid.stderr)")
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var environment = ServiceFixtures.minimalEnvironment(for: service, directory: directory)
        environment.merge(["CODE_SERVICE": service, "PORT": String(freePort())]) { _, new in new }
        let unhealthy = try await ServiceProcess.run("code-services", arguments: ["--health-check"], environment: environment)
        #expect(unhealthy.status == 1, "\(unhealthy.stderr)")
        let unknownOption = try await ServiceProcess.run(
            "code-services", arguments: ["--no-such-option"], environment: ["CODE_SERVICE": service])
        #expect(unknownOption.status == 64, "\(unknownOption.stderr)")
    }

    /// The images' path: the service serves, then SIGTERM stops it with status 0. code-services' main is
    /// synchronous (runServingMainQueue): the service starts from the main queue and exits from it.
    @Test(arguments: services)
    func servesAndStopsOnSIGTERM(service: String) async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = freePort()
        var environment = ServiceExecutableTests.environment(for: service, port: port, metricsPort: 0, directory: directory)
        environment["CODE_SERVICE"] = service
        let process = try ServiceProcess("code-services", environment: environment)
        defer { process.stop() }
        _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/live", since: process.launchedAt)
        process.signal(SIGTERM)
        let status = await process.waitForExit(timeout: .seconds(8))
        #expect(status == 0, "exit status after SIGTERM; output: \(process.standardOutput)")
        #expect(process.standardOutput.contains(#""message":"stopped""#), "\(process.standardOutput)")
    }

    @Test func apiSubcommandsWork() async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = ["CODE_SERVICE": "code-api", "DATABASE_URL": "sqlite://\(directory.path)/code.db"]
        let migrate = try await ServiceProcess.run("code-services", arguments: ["migrate"], environment: database)
        #expect(migrate.status == 0, "\(migrate.stderr)")
        #expect(migrate.stdout.contains("migrations applied (sqlite)"))
        let create = try await ServiceProcess.run(
            "code-services", arguments: ["keys", "create", "--role", "viewer", "--name", "multi-call"], environment: database)
        #expect(create.status == 0, "\(create.stderr)")
        #expect(create.stdout.contains(" viewer code_"))
    }

    @Test func anUnknownOrMissingServiceExits64NamingTheServices() async throws {
        for (arguments, environment) in [([], [:]), (["code-nothing"], [:]), (["--version"], ["CODE_SERVICE": "code-nothing"])] {
            let result = try await ServiceProcess.run("code-services", arguments: arguments, environment: environment)
            #expect(result.status == 64, "\(arguments) \(environment): \(result.stderr)")
            #expect(result.stderr.contains("services: code-api, code-worker, code-mcp"), "\(result.stderr)")
        }
    }

    /// Runs `executable` (a path, not a product name) to completion.
    static func run(_ executable: URL, arguments: [String], environment: [String: String]) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin"].merging(environment) { _, new in new }
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let error = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
    }
}
