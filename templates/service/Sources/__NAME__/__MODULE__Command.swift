import ArgumentParser
import CodeRuntime
import __MODULE__

@main
struct __MODULE__Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "__NAME__",
        abstract: "__DESCRIPTION__",
        version: BuildInfo.describe("__NAME__")
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await ServiceLauncher(name: "__NAME__", defaultPort: __PORT__).main(
            options: options,
            configure: __STEM__Settings.init(from:),
            build: buildApplication(settings:runtime:)
        )
    }
}
