import ArgumentParser
import CodeRuntime

/// The `code-worker` command line. The `code-worker` executable and the multi-call `code-services` binary
/// both run it (`main(_:)`, `main(serviceArguments:)`).
public struct CodeWorkerCommand: ServiceCommand {
    public static let configuration = CommandConfiguration(
        commandName: "code-worker",
        abstract: "CODE services deployment worker: claims queued deployments and runs their pipeline.",
        version: BuildInfo.describe("code-worker")
    )

    @OptionGroup var options: ServiceOptions

    public init() {}

    static let launcher = ServiceLauncher(name: "code-worker", defaultPort: 8001)

    public static func serve() async throws {
        try await launcher.run(configure: WorkerSettings.init(from:), build: buildApplication(settings:runtime:))
    }

    public func run() async throws {
        try await Self.launcher.main(options: options, serve: Self.serve)
    }
}
