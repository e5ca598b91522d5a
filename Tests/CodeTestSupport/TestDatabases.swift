import Foundation
import Logging
import PostgresNIO

/// The two database backends every store and API test runs against.
public enum TestBackend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres

    public var description: String { rawValue }

    /// Both, unless `CODE_TEST_SKIP_POSTGRES=1` says this machine has no PostgreSQL server. Without that
    /// variable, a missing `CODE_TEST_POSTGRES_URL` fails the PostgreSQL tests instead of skipping them.
    public static var available: [TestBackend] {
        ProcessInfo.processInfo.environment["CODE_TEST_SKIP_POSTGRES"] == "1" ? [.sqlite] : allCases
    }
}

public struct NoPostgresServer: Error, CustomStringConvertible {
    public var description: String {
        "CODE_TEST_POSTGRES_URL is not set: run the tests with `make test-swift` (it starts a PostgreSQL server), point the variable at a server, or set CODE_TEST_SKIP_POSTGRES=1"
    }
}

/// A database of its own for one test: a SQLite file in a temporary folder, or a new PostgreSQL database
/// on the test server. `drop()` removes it.
public struct TestDatabase: Sendable {
    public let backend: TestBackend
    public let url: String
    private let cleanup: @Sendable () async -> Void

    /// How long the tests' stores wait on a silent PostgreSQL server before failing as unavailable, instead
    /// of the services' 1.5 s (`PostgresStore.defaultSilenceLimit`). A test run starts its PostgreSQL test cases
    /// all at once in one debug process on two cores, and that process can leave an answer unread for longer
    /// than 1.5 s: with the server logging every statement answered within 0.6 s, a create gave up after 1.5 s
    /// in three of five full runs (five tests in one of them). Below the 10 s ceiling
    /// (`PostgresStore.operationCeiling`), so that the tests still run the silence rule rather than only the
    /// ceiling. The services' own limit runs in LeaseFencingTests' unreachable server (bounded loosely there)
    /// and is timed end to end by the PostgreSQL restart drill on the running containers.
    public static let silenceLimit: Duration = .seconds(5)

    public static func create(_ backend: TestBackend) async throws -> TestDatabase {
        switch backend {
        case .sqlite:
            let directory = try ServiceFixtures.temporaryDirectory()
            return TestDatabase(backend: backend, url: "sqlite://\(directory.path)/code.db") {
                try? FileManager.default.removeItem(at: directory)
            }
        case .postgres:
            guard let admin = ProcessInfo.processInfo.environment["CODE_TEST_POSTGRES_URL"], var components = URLComponents(string: admin)
            else {
                throw NoPostgresServer()
            }
            let name = "code_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            try await administer(admin, "CREATE DATABASE \(name)")
            components.path = "/\(name)"
            return TestDatabase(backend: backend, url: components.string!) {
                try? await administer(admin, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            }
        }
    }

    init(backend: TestBackend, url: String, cleanup: @escaping @Sendable () async -> Void) {
        self.backend = backend
        self.url = url
        self.cleanup = cleanup
    }

    public func drop() async {
        await cleanup()
    }

    /// Runs `body` with a database of its own, dropped afterwards whether `body` succeeds or throws.
    public static func with<T: Sendable>(_ backend: TestBackend, _ body: (TestDatabase) async throws -> T) async throws -> T {
        let database = try await create(backend)
        do {
            let result = try await body(database)
            await database.drop()
            return result
        } catch {
            await database.drop()
            throw error
        }
    }

    /// Runs one statement on the server's maintenance database.
    static func administer(_ adminURL: String, _ sql: String) async throws {
        guard let url = URL(string: adminURL), let host = url.host, let user = url.user else { throw NoPostgresServer() }
        let configuration = PostgresConnection.Configuration(
            host: host, port: url.port ?? 5432, username: user, password: url.password,
            database: String(url.path.dropFirst()), tls: .disable
        )
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Logger(label: "test-postgres"))
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test-postgres"))
            try await connection.close()
        } catch {
            try? await connection.close()
            throw error
        }
    }
}
