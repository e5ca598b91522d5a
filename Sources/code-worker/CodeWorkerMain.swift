// The `code-worker` executable (`swift run code-worker`, the development image, the tests): the command line of
// CodeWorkerCommand, as its entry point. The container images run the same command from the multi-call
// `code-services`.
import CodeWorker

@main
extension CodeWorkerCommand {}
