import CodeRuntime
import Testing

@testable import CodeAPI
@testable import CodeMCP
@testable import CodeWorker

/// `main(serviceArguments: [])` runs the command's `serve()` without ArgumentParser (ServiceCommand). These
/// check that ArgumentParser, given no arguments, would run the same: the command whose `run` is
/// `launcher.main(options:serve:)` with that `serve`, and `--health-check` off (it is on when given, so the
/// check reads what was parsed).
@Suite("Service commands without arguments")
struct ServiceCommandTests {
    @Test func codeAPIServes() throws {
        let parsed = try #require(try CodeAPICommand.parseAsRoot([]) as? Serve)
        #expect(!parsed.options.healthCheck)
        let checking = try #require(try CodeAPICommand.parseAsRoot(["--health-check"]) as? Serve)
        #expect(checking.options.healthCheck)
    }

    @Test func codeWorkerServes() throws {
        let parsed = try #require(try CodeWorkerCommand.parseAsRoot([]) as? CodeWorkerCommand)
        #expect(!parsed.options.healthCheck)
        let checking = try #require(try CodeWorkerCommand.parseAsRoot(["--health-check"]) as? CodeWorkerCommand)
        #expect(checking.options.healthCheck)
    }

    @Test func codeMCPServes() throws {
        let parsed = try #require(try CodeMCPCommand.parseAsRoot([]) as? CodeMCPCommand)
        #expect(!parsed.options.healthCheck)
        let checking = try #require(try CodeMCPCommand.parseAsRoot(["--health-check"]) as? CodeMCPCommand)
        #expect(checking.options.healthCheck)
    }
}
