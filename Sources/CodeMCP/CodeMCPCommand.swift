import ArgumentParser
import CodeRuntime

/// The `code-mcp` command line. The `code-mcp` executable and the multi-call `code-services` binary
/// both run it (`main(_:)`).
public struct CodeMCPCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "code-mcp",
        abstract: "CODE services Model Context Protocol server.",
        version: BuildInfo.describe("code-mcp")
    )

    @OptionGroup var options: ServiceOptions

    public init() {}

    public func run() async throws {
        try await ServiceLauncher(name: "code-mcp", defaultPort: 3000).main(
            options: options,
            configure: MCPSettings.init(from:),
            build: buildApplication(settings:runtime:)
        )
    }
}
