import ArgumentParser
import CodeRuntime

/// The `code-mcp` command line. The `code-mcp` executable and the multi-call `code-services` binary
/// both run it (`main(_:)`, `main(serviceArguments:)`).
public struct CodeMCPCommand: ServiceCommand {
    public static let configuration = CommandConfiguration(
        commandName: "code-mcp",
        abstract: "CODE services Model Context Protocol server.",
        version: BuildInfo.describe("code-mcp")
    )

    @OptionGroup var options: ServiceOptions

    public init() {}

    static let launcher = ServiceLauncher(name: "code-mcp", defaultPort: 3000)

    public static func serve() async throws {
        try await launcher.run(configure: MCPSettings.init(from:), build: buildApplication(settings:runtime:))
    }

    public func run() async throws {
        try await Self.launcher.main(options: options, serve: Self.serve)
    }
}
