import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import ServiceLifecycle

/// PostgreSQL through postgres-nio. The `PostgresClient` connection pool is a `Service`: it runs in the
/// application's `ServiceGroup` and closes its connections on shutdown.
public final class PostgresDatabase: SQLDatabase, Service {
    public let client: PostgresClient
    private let logger: Logger

    /// Channel that the API notifies when it queues a deployment and workers listen on.
    public static let queuedChannel = "code_deployments_queued"

    /// Arbitrary constant key of the advisory lock that serializes migrations across processes.
    static let migrationLockKey: Int64 = 0x434F_4445_4D49_4752

    public let dialect = SQLDialect(
        name: "postgres",
        skipLocked: " FOR UPDATE SKIP LOCKED",
        forUpdate: " FOR UPDATE",
        queuedNotification: { id in SQLStatement("SELECT pg_notify('\(PostgresDatabase.queuedChannel)', ?) AS notified", [.text(id)]) }
    )

    public init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    public func run() async throws {
        await client.run()
    }

    public func query(_ statement: SQLStatement) async throws -> [SQLRow] {
        let rows = try await client.query(Self.postgresQuery(statement), logger: logger)
        return try await Self.collect(rows)
    }

    public func transaction(_ steps: [SQLStep]) async throws -> [[SQLRow]] {
        try await client.withTransaction(logger: logger) { connection in
            var results: [[SQLRow]] = []
            for step in steps {
                guard step.shouldRun(after: results) else {
                    results.append([])
                    continue
                }
                let rows = try await connection.query(Self.postgresQuery(step.statement), logger: logger)
                results.append(try await Self.collect(rows))
            }
            return results
        }
    }

    public func migrate() async throws {
        try await client.withTransaction(logger: logger) { connection in
            _ = try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockKey))", logger: logger)
            _ = try await connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                logger: logger
            )
            var applied: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM schema_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for migration in SchemaMigrations.postgres where !applied.contains(migration.name) {
                for statement in migration.statements {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                let now = SQLValue.milliseconds(Date())
                _ = try await connection.query(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (\(migration.name), \(now))",
                    logger: logger
                )
                logger.info("applied migration", metadata: ["migration": .string(migration.name)])
            }
        }
    }

    /// Notifications on `channel`, on a connection of its own, until the task is cancelled.
    public func listen(on channel: String, _ onNotification: @escaping @Sendable () async -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: channel) { notifications in
                for try await _ in notifications {
                    await onNotification()
                }
            }
        }
    }

    /// `?` placeholders become `$1`, `$2`, ... (the store's statements contain no other question marks).
    static func postgresQuery(_ statement: SQLStatement) -> PostgresQuery {
        var sql = ""
        var index = 0
        for character in statement.sql {
            if character == "?" {
                index += 1
                sql += "$\(index)"
            } else {
                sql.append(character)
            }
        }
        precondition(index == statement.values.count, "placeholder count differs from value count in: \(statement.sql)")
        var bindings = PostgresBindings(capacity: statement.values.count)
        for value in statement.values {
            switch value {
            case .null: bindings.appendNull()
            case .integer(let integer): bindings.append(integer)
            case .real(let real): bindings.append(real)
            case .text(let text): bindings.append(text)
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [SQLRow] {
        var result: [SQLRow] = []
        for try await row in rows {
            var values: [String: SQLValue] = [:]
            for cell in row {
                values[cell.columnName] = try SQLValue(cell)
            }
            result.append(SQLRow(values))
        }
        return result
    }
}

extension SQLValue {
    init(_ cell: PostgresCell) throws {
        guard cell.bytes != nil else {
            self = .null
            return
        }
        switch cell.dataType {
        case .int2, .int4, .int8, .oid:
            self = .integer(try cell.decode(Int64.self))
        case .bool:
            self = .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .float4, .float8, .numeric:
            self = .real(try cell.decode(Double.self))
        case .text, .varchar, .name, .bpchar, .json, .jsonb, .uuid:
            self = .text(try cell.decode(String.self))
        default:
            // e.g. `void` from pg_notify: nothing the store reads.
            self = .null
        }
    }
}

extension PostgresClient.Configuration {
    /// Configuration from a `postgres://user[:password]@host[:port]/database[?sslmode=disable|prefer|require]` URL.
    /// `password` (from `DATABASE_PASSWORD` or its `_FILE`) wins over one in the URL.
    public static func from(url: URL, password overridingPassword: String?) throws -> PostgresClient.Configuration {
        guard let host = url.host, !host.isEmpty else { throw StoreError.invalidDatabaseURL("the PostgreSQL URL has no host") }
        guard let user = url.user, !user.isEmpty else { throw StoreError.invalidDatabaseURL("the PostgreSQL URL has no user") }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        guard !database.isEmpty else { throw StoreError.invalidDatabaseURL("the PostgreSQL URL has no database name") }
        let query = URLComponents(url: url, resolvingAgainstBaseURL: false)?.queryItems ?? []
        let sslMode = query.first { $0.name == "sslmode" }?.value ?? "prefer"
        // libpq's meanings: prefer and require encrypt without checking the certificate; verify-ca checks
        // the chain, verify-full also the host name.
        func tlsConfiguration(_ verification: CertificateVerification) -> TLSConfiguration {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = verification
            return configuration
        }
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "allow", "prefer": tls = .prefer(tlsConfiguration(.none))
        case "require": tls = .require(tlsConfiguration(.none))
        case "verify-ca": tls = .require(tlsConfiguration(.noHostnameVerification))
        case "verify-full": tls = .require(tlsConfiguration(.fullVerification))
        default:
            throw StoreError.invalidDatabaseURL("sslmode must be disable, allow, prefer, require, verify-ca or verify-full, not '\(sslMode)'")
        }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: url.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: overridingPassword ?? url.password?.removingPercentEncoding,
            database: database,
            tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 10
        return configuration
    }
}
