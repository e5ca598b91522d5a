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

    /// Runs one statement on the server's maintenance database, one at a time in this process
    /// (`AdministrationLock` says why).
    static func administer(_ adminURL: String, _ sql: String) async throws {
        try await AdministrationLock.shared.withLock { try await administerNow(adminURL, sql) }
    }

    private static func administerNow(_ adminURL: String, _ sql: String) async throws {
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

/// The test databases are created and dropped one at a time. A test run starts its PostgreSQL cases all at
/// once, and some sixty CREATE DATABASEs at once kept the two-core test server busy for seconds (each took up
/// to 1.4 s in the server's log); a store operation of a test that had its database already then waited past
/// the services' 1.5 s silence limit for an answer, and failed as unavailable.
actor AdministrationLock {
    static let shared = AdministrationLock()

    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func withLock<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        if busy {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            busy = true
        }
        // The lock passes straight to the next waiter, so `busy` stays set while it is handed on.
        defer {
            if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
        }
        return try await body()
    }
}
