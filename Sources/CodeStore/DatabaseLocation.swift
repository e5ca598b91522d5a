import Foundation
import PostgresNIO

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
