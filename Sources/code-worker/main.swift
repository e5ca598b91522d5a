// The `code-worker` executable (`swift run code-worker`, the development image, the tests): the command line of
// CodeWorkerCommand. The container images run the same command from the multi-call `code-services`.
import CodeWorker

await CodeWorkerCommand.main()
