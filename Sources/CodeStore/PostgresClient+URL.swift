import Foundation
import NIOSSL
import PostgresNIO

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
            throw StoreError.invalidDatabaseURL(
                "sslmode must be disable, allow, prefer, require, verify-ca or verify-full, not '\(sslMode)'")
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
