// The `__NAME__` executable (`swift run __NAME__`, the tests): the command line of __MODULE__Command, as its
// entry point. The container images run the same command from the multi-call `code-services`.
import __MODULE__

@main
extension __MODULE__Command {}
