import ArgumentParser

/// A service's command line: ArgumentParser's command, which also knows what it runs when it is given no
/// arguments (every start of the images' `code-services`), so that `main(serviceArguments:)` can run that
/// without parsing.
///
/// Why: parsing an empty command line costs ArgumentParser more than it seems. It builds the argument
/// sets of the command, of its default subcommand and of its two completion pseudo-commands
/// (`--generate-completion-script`) by reflecting over their properties with `Mirror`, and every type it
/// meets for the first time is a protocol-conformance scan over the binary's 16,000 records: 12 % of the
/// perf samples of a start of code-api to its first `/health/live`, before any of the service's own work
/// (docs/performance.md, twenty-first round; side by side, a start 1-2 ms shorter without it).
public protocol ServiceCommand: AsyncParsableCommand {
    /// Runs the service until a signal stops it: exactly what the command runs when it is given no
    /// arguments (ServiceCommandTests checks that ArgumentParser would run the same).
    static func serve() async throws
}

extension ServiceCommand {
    /// Runs the command line `arguments` (without the executable's name) and exits as ArgumentParser's
    /// `main` does: an empty one serves the service directly, anything else goes through ArgumentParser
    /// (`--health-check`, `--version`, `--help`, subcommands, errors).
    public static func main(serviceArguments arguments: [String]) async {
        guard arguments.isEmpty else {
            await main(arguments)
            return
        }
        do {
            try await serve()
        } catch {
            // The same exit codes and messages as `main` (a configuration error is 78, `ExitCode` silent).
            exit(withError: error)
        }
    }
}
