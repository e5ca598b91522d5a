import ArgumentParser
import CodeConfiguration
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import Logging

/// The `code-api` command line: `serve` (the default), `migrate`, `keys create|generate`. The
/// `code-api` executable and the multi-call `code-services` binary both run it (`main(_:)`,
/// `main(serviceArguments:)`).
///
/// Every command names itself (`commandName`): ArgumentParser otherwise derives each name from the type's
/// name with `String(describing:)` at every start, and the protocol-conformance lookups behind that were a
/// seventh of the conformance scanning of code-api's start-up (docs/performance.md, tenth round).
public struct CodeAPICommand: ServiceCommand {
    public static let configuration = CommandConfiguration(
        commandName: "code-api",
        abstract: "CODE services public REST API.",
        version: BuildInfo.describe("code-api"),
        subcommands: [Serve.self, Migrate.self, Keys.self],
        defaultSubcommand: Serve.self
    )

    public init() {}

    static let launcher = ServiceLauncher(name: "code-api", defaultPort: 8000)

    /// `serve`, the default subcommand.
    public static func serve() async throws {
        try await launcher.run(configure: APISettings.init(from:), build: buildApplication(settings:runtime:))
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Serve the API (the default).")

    @OptionGroup var options: ServiceOptions

    func run() async throws {
        try await CodeAPICommand.launcher.main(options: options, serve: CodeAPICommand.serve)
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Apply database migrations and exit.")

    func run() async throws {
        let settings = try AdminCommand.settings()
        try await AdminCommand.withStore(settings) { store in
            try await store.migrate()
            print("migrations applied (\(store.backend))")
        }
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Manage API keys directly in the configured database.",
        subcommands: [Create.self, Generate.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create a key and print its secret (shown only once).")

        @Option(help: "viewer, operator or admin") var role: Role
        @Option(help: "A name to recognise the key by.") var name: String

        func run() async throws {
            let settings = try AdminCommand.settings()
            let secret = APIKeySecret.generate()
            let key = try await AdminCommand.withStore(settings) { store in
                try await store.migrate()
                return try await store.createKey(
                    NewAPIKey(
                        name: name, role: role, prefix: APIKeySecret.prefix(of: secret), secretHash: APIKeySecret.hash(secret),
                        createdBy: nil
                    ))
            }
            print("\(key.id) \(key.role.rawValue) \(secret)")
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate", abstract: "Print a new random key secret without storing it (for CODE_ADMIN_KEY).")

        func run() {
            print(APIKeySecret.generate())
        }
    }
}

extension Role: ExpressibleByArgument {}

/// Commands that use the database without serving: configuration as the server reads it.
enum AdminCommand {
    static func settings() throws -> APISettings {
        do {
            return try APISettings(from: EnvironmentSettings())
        } catch {
            FileHandle.standardError.write(Data("code-api: configuration error: \(error)\n".utf8))
            throw ExitCode(ConfigurationError.exitCode)
        }
    }

    static func withStore<T: Sendable>(_ settings: APISettings, _ body: @escaping @Sendable (any Store) async throws -> T) async throws -> T
    {
        var logger = Logger(label: "code-api")
        logger.logLevel = .warning
        do {
            return try await StoreHandle.open(settings.database, password: settings.databasePassword, logger: logger).withServices(body)
        } catch let error as any ExitCodeError {
            // A database migrated by a newer version: the same line and exit code as `code-api serve`.
            FileHandle.standardError.write(Data("code-api: \(error)\n".utf8))
            throw ExitCode(error.exitCode)
        }
    }
}
