// code-services: every service in one multi-call binary, the `/app/service` of every container image.
// The images share its layer; each one says which service it is with `CODE_SERVICE` (an ENV, no layer).
//
// Which service runs, the first rule that applies:
//   1. the name it was started as (argv[0]'s last path component), when that is a service's name:
//      a link `code-api -> code-services` behaves as the code-api executable;
//   2. the environment variable CODE_SERVICE (the images set it; an unknown name exits 64);
//   3. the first argument, when it is a service's name: `code-services code-api migrate`.
// The service's command then parses the remaining arguments exactly as its own executable does
// (`--health-check`, `--version`, `code-api migrate`, `keys create`, ... and their exit codes); with none
// left, the images' case, it serves without building ArgumentParser's parser (ServiceCommand says why).
// scripts/new-service.sh adds a generated service's import (in order) and command (above the marker).
import ArgumentParser
import CodeAPI
import CodeMCP
import CodeRuntime
import CodeWorker
import Foundation

/// Every service of the binary: the command its own executable runs (`@main` in `Sources/<name>/`).
let services: [any ServiceCommand.Type] = [
    CodeAPICommand.self,
    CodeWorkerCommand.self,
    CodeMCPCommand.self,
    // scripts/new-service.sh adds services above this line.
]

func serviceName(of command: any ServiceCommand.Type) -> String {
    command.configuration.commandName ?? String(describing: command)
}

func command(named name: String) -> (any ServiceCommand.Type)? {
    services.first { serviceName(of: $0) == name }
}

func run<Command: ServiceCommand>(_ command: Command.Type, _ arguments: [String]) async {
    await command.main(serviceArguments: arguments)
}

func fail(_ message: String) -> Never {
    let names = services.map(serviceName(of:)).joined(separator: ", ")
    FileHandle.standardError.write(
        Data(
            """
            code-services: \(message)
            usage: code-services SERVICE [ARGUMENTS...], CODE_SERVICE=SERVICE code-services [ARGUMENTS...], or a link named after a service
            services: \(names)

            """.utf8))
    exit(64)
}

/// The service to run and the arguments its command parses.
func selectedService() -> (command: any ServiceCommand.Type, arguments: [String]) {
    let arguments = CommandLine.arguments
    // The last path component, split off by hand: Foundation's URL built and parsed a URL for it, 1.6 % of
    // a start's CPU (docs/performance.md, twentieth round).
    let invokedAs = arguments.first?.split(separator: "/").last.map(String.init) ?? ""
    if let service = command(named: invokedAs) {
        return (service, Array(arguments.dropFirst()))
    } else if let selected = ProcessInfo.processInfo.environment["CODE_SERVICE"], !selected.isEmpty {
        guard let service = command(named: selected) else { fail("CODE_SERVICE=\(selected) is not a service of this binary") }
        return (service, Array(arguments.dropFirst()))
    } else if arguments.count > 1, let service = command(named: arguments[1]) {
        return (service, Array(arguments.dropFirst(2)))
    } else {
        fail(arguments.count > 1 ? "\(arguments[1]) is not a service of this binary" : "which service?")
    }
}

let (service, serviceArguments) = selectedService()
// A synchronous main: the main thread serves the main queue instead of leaving through dispatch_main().
runServingMainQueue { await run(service, serviceArguments) }
