// The `__NAME__` executable (`swift run __NAME__`, the development image, the tests): the command line
// of __MODULE__Command. The container images run the same command from the multi-call `code-services`.
import __MODULE__

await __MODULE__Command.main()
