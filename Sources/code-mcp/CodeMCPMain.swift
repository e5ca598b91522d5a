// The `code-mcp` executable (`swift run code-mcp`, the development image, the tests): the command line of
// CodeMCPCommand, as its entry point. The container images run the same command from the multi-call
// `code-services`.
import CodeMCP

@main
extension CodeMCPCommand {}
