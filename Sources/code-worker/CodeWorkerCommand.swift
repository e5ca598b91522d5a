import ArgumentParser
import CodeWorker
import CodeRuntime

@main
struct CodeWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "code-worker",
        abstract: "CODE services deployment worker.",
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
