// The `code-api` executable (`swift run code-api`, the development image, the tests): the command line of
// CodeAPICommand, as its entry point. The container images run the same command from the multi-call
// `code-services`.
import CodeAPI

@main
extension CodeAPICommand {}
