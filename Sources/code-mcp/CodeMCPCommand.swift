import ArgumentParser
import CodeMCP
import CodeRuntime

@main
struct CodeMCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "code-mcp",
        abstract: "CODE services Model Context Protocol server.",
        version: BuildInfo.describe("code-mcp")
    )

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await ServiceLauncher(name: "code-mcp", defaultPort: 3000).main(
            options: options,
            configure: MCPSettings.init(from:),
            build: buildApplication(settings:runtime:)
        )
    }
}
