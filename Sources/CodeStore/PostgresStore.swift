import CoreMetrics
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// The store on PostgreSQL through postgres-nio. The `PostgresClient` connection pool is a `Service`: it
/// runs in the application's `ServiceGroup` and closes its connections on shutdown.
///
/// A change is a closure run by `client.withTransaction { connection in ... }` (BEGIN, the closure, then
/// COMMIT, or ROLLBACK if it throws). A guard that later statements depend on locks its row
/// (`FOR UPDATE`), claims skip rows other workers are claiming (`FOR UPDATE SKIP LOCKED`), and queuing a
/// deployment notifies listening workers inside the same transaction, so the notice goes out on commit.
/// Values are bound through `PostgresQuery` string interpolation (`\(value)` becomes `$n`).
public final class PostgresStore: Store, Service, Sendable {
    public let client: PostgresClient
    let logger: Logger
    let metrics: StoreMetrics

    /// Channel that the API notifies when it queues a deployment and workers listen on.
    public static let queuedChannel = "code_deployments_queued"

    /// Arbitrary constant key of the advisory lock that serializes migrations across processes.
    static let migrationLockKey: Int64 = 0x434F_4445_4D49_4752

    public var backend: String { "postgres" }

    /// How long the server may answer nothing, to any operation, before operations fail with
    /// `StoreError.unavailable`: while it is down, requests answer 503 within this instead of waiting for the
    /// pool to reconnect. A busy server that answers others keeps an operation waiting in the pool's queue,
    /// up to `operationCeiling` (`ServerSilence`).
    public static let silenceLimit: Duration = .milliseconds(1500)
    /// The longest one operation waits, whatever the server answers others.
    public static let operationCeiling: Duration = .seconds(10)

    public init(configuration: PostgresClient.Configuration, logger: Logger, metricsFactory: (any MetricsFactory)? = nil) {
        // postgres-nio opens each connection on `eventLoopGroup.any()`, the calling loop: with the loops as the
        // global executor (CodeRuntime's EventLoopExecutor) the pool's connections mostly share one loop. Left
        // so on purpose: spreading them over the loops (tried, with an EventLoopGroup whose any() is next())
        // measured side by side cost code-worker about 15 % more CPU per deployment, each round trip hopping
        // between loops, and did not move code-api's load drill (docs/performance.md, fifth round).
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        metrics = StoreMetrics(
            backend: "postgres", factory: metricsFactory,
            patience: ServerSilence(silence: Self.silenceLimit, ceiling: Self.operationCeiling), unavailable: Self.unavailableReason)
    }

    public func run() async throws {
        await client.run()
    }

    public func migrate() async throws {
        let unknown = try await client.withTransaction(logger: logger) { connection -> [String] in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger: logger).drain()
            try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)", logger: logger
            ).drain()
            let applied = Set(
                try await connection.query("SELECT name FROM schema_migrations", logger: logger).records { try $0.decode(String.self) })
            // A database migrated by a newer binary: stop rather than run on a schema this one does not know.
            let unknown = applied.subtracting(SchemaMigrations.names(SchemaMigrations.postgres))
            guard unknown.isEmpty else { return unknown.sorted() }
            for migration in SchemaMigrations.postgres where !applied.contains(migration.name) {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).drain()
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (\(migration.name), \(Date().millisecondsSinceEpoch))",
                    logger: logger
                ).drain()
                logger.info("applied migration", metadata: ["migration": .string(migration.name)])
            }
            return []
        }
        // Thrown outside the transaction: postgres-nio wraps what the closure throws.
        guard unknown.isEmpty else { throw StoreError.schemaNewerThanBinary(unknownMigrations: unknown) }
    }

    /// Whether `error` means the server cannot be reached (down, restarting, the connection dropped),
    /// rather than a problem with the statement; what to say if so.
    static func unavailableReason(_ error: any Error) -> String? {
        if let transaction = error as? PostgresTransactionError {
            for inner in [transaction.beginError, transaction.closureError, transaction.commitError].compactMap({ $0 }) {
                if let reason = unavailableReason(inner) { return reason }
            }
            return nil
        }
        guard let error = error as? PSQLError else { return nil }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
            return "\(error.code)"
        case .server:
            // Class 08 (connection exception) and 57P (the server is shutting down or starting up).
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P") ? "the server answered \(state)" : nil
        default:
            return nil
        }
    }

    public func ping() async throws {
        try await metrics.measure("ping") { [client, logger] in
            try await client.query("SELECT 1", logger: logger).drain()
        }
    }

    /// Notifications on `channel`, on a connection of its own, until the task is cancelled.
    public func listen(on channel: String, _ onNotification: @escaping @Sendable () async -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: channel) { notifications in
                // LISTEN is in place: one call now covers whatever was notified while it was not (the first
                // start, or a reconnection after the server went away), which no notification will repeat.
                await onNotification()
                for try await _ in notifications {
                    await onNotification()
                }
            }
        }
    }
}
