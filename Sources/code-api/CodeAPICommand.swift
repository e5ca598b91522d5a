import ArgumentParser
import CodeAPI
import CodeRuntime

@main
struct CodeAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "code-api",
        abstract: "CODE services public REST API.",
        version: BuildInfo.describe("code-api")
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await ServiceLauncher(name: "code-api", defaultPort: 8000).main(
            options: options,
            configure: APISettings.init(from:),
            build: buildApplication(settings:runtime:)
        )
    }
}
