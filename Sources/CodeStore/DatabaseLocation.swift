import CoreMetrics
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Where the store lives, from `DATABASE_URL`:
/// `sqlite:///absolute/path.db`, `sqlite://relative/path.db`, or `postgres://user@host:5432/database`.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: URL)

    /// Relative to the working directory: `./data/code.db`.
    public static let defaultURL = "sqlite://data/code.db"

    public init(url text: String) throws {
        if text.hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard !path.isEmpty, path != "/" else {
                throw StoreError.invalidDatabaseURL("expected sqlite:///absolute/path.db or sqlite://relative/path.db")
            }
            self = .sqlite(path: path)
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            guard let url = URL(string: text), url.host != nil else {
                throw StoreError.invalidDatabaseURL("expected postgres://user@host:5432/database")
            }
            _ = try PostgresClient.Configuration.from(url: url, password: nil)
            self = .postgres(url: url)
        } else {
            throw StoreError.invalidDatabaseURL("expected a sqlite:// or postgres:// URL")
        }
    }

    /// The URL without its password, for logs.
    public var redacted: String {
        switch self {
        case .sqlite(let path):
            return "sqlite://\(path)"
        case .postgres(let url):
            guard var components = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "postgres://…" }
            if components.password != nil { components.password = "***" }
            return components.string ?? "postgres://…"
        }
    }
}

/// A store and the services it needs running (the PostgreSQL connection pool).
public struct StoreHandle: Sendable {
    public let store: SQLStore
    public let services: [any Service]

    /// Opens the database. SQLite opens the file now; PostgreSQL connects once its service runs.
    public static func open(
        _ location: DatabaseLocation,
        password: String? = nil,
        logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil
    ) throws -> StoreHandle {
        logger.info("database", metadata: ["location": .string(location.redacted)])
        switch location {
        case .sqlite(let path):
            return StoreHandle(store: SQLStore(database: try SQLiteDatabase(path: path), metricsFactory: metricsFactory), services: [])
        case .postgres(let url):
            let database = PostgresDatabase(configuration: try .from(url: url, password: password), logger: logger)
            return StoreHandle(store: SQLStore(database: database, metricsFactory: metricsFactory), services: [database])
        }
    }

    /// Runs `body` with the store's services running, for commands without a server (`code-api migrate`).
    public func withServices<T: Sendable>(_ body: @escaping @Sendable (SQLStore) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            for service in services {
                group.addTask {
                    try await service.run()
                    return nil
                }
            }
            let result = try await body(store)
            group.cancelAll()
            while let _ = try? await group.next() {}
            return result
        }
    }
}
