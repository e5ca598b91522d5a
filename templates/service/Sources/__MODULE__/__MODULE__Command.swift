import ArgumentParser
import CodeRuntime

/// The `__NAME__` command line. The `__NAME__` executable and the multi-call `code-services` binary
/// both run it (`main(_:)`).
public struct __MODULE__Command: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "__NAME__",
        abstract: "__DESCRIPTION__",
        version: BuildInfo.describe("__NAME__")
    )

    @OptionGroup var options: ServiceOptions

    public init() {}

    public func run() async throws {
        try await ServiceLauncher(name: "__NAME__", defaultPort: __PORT__).main(
            options: options,
            configure: __STEM__Settings.init(from:),
            build: buildApplication(settings:runtime:)
        )
    }
}
