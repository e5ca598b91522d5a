import ArgumentParser
import CodeRuntime

/// The `__NAME__` command line. The `__NAME__` executable and the multi-call `code-services` binary
/// both run it (`main(_:)`, `main(serviceArguments:)`).
public struct __MODULE__Command: ServiceCommand {
    public static let configuration = CommandConfiguration(
        commandName: "__NAME__",
        abstract: "__DESCRIPTION__",
        version: BuildInfo.describe("__NAME__")
    )

    @OptionGroup var options: ServiceOptions

    public init() {}

    static let launcher = ServiceLauncher(name: "__NAME__", defaultPort: __PORT__)

    public static func serve() async throws {
        try await launcher.run(configure: __STEM__Settings.init(from:), build: buildApplication(settings:runtime:))
    }

    public func run() async throws {
        try await Self.launcher.main(options: options, serve: Self.serve)
    }
}
