import CoreMetrics
import Logging
import ServiceLifecycle

/// A store and the services it needs running (the PostgreSQL connection pool).
public struct StoreHandle: Sendable {
    public let store: any Store
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
            return StoreHandle(store: try SQLiteStore(path: path, metricsFactory: metricsFactory), services: [])
        case .postgres(let url):
            let store = PostgresStore(
                configuration: try .from(url: url, password: password), logger: logger, metricsFactory: metricsFactory)
            return StoreHandle(store: store, services: [store])
        }
    }

    /// Runs `body` with the store's services running, for commands without a server (`code-api migrate`).
    public func withServices<T: Sendable>(_ body: @escaping @Sendable (any Store) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            for service in services {
                group.addTask {
                    try await service.run()
                    return nil
                }
            }
            let result = try await body(store)
            group.cancelAll()
            while (try? await group.next()) != nil {}
            return result
        }
    }
}
