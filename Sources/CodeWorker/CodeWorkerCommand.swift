import ArgumentParser
import CodeRuntime

/// The `code-worker` command line. The `code-worker` executable and the multi-call `code-services` binary
/// both run it (`main(_:)`).
public struct CodeWorkerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "code-worker",
        abstract: "CODE services deployment worker: claims queued deployments and runs their pipeline.",
        version: BuildInfo.describe("code-worker")
    )

    @OptionGroup var options: ServiceOptions

    public init() {}

    public func run() async throws {
        try await ServiceLauncher(name: "code-worker", defaultPort: 8001).main(
            options: options,
            configure: WorkerSettings.init(from:),
            build: buildApplication(settings:runtime:)
        )
    }
}
