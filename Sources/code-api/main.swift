// The `code-api` executable (`swift run code-api`, the development image, the tests): the command line of
// CodeAPICommand. The container images run the same command from the multi-call `code-services`.
import CodeAPI

await CodeAPICommand.main()
