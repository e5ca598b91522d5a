import ArgumentParser
import CodeRuntime
import CodeWorker

@main
struct CodeWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "code-worker",
        abstract: "CODE services deployment worker: claims queued deployments and runs their pipeline.",
        version: BuildInfo.describe("code-worker")
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await ServiceLauncher(name: "code-worker", defaultPort: 8001).main(
            options: options,
            configure: WorkerSettings.init(from:),
            build: buildApplication(settings:runtime:)
        )
    }
}
