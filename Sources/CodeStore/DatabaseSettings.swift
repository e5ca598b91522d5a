import CodeConfiguration

/// `DATABASE_URL` and `DATABASE_PASSWORD` (or `_FILE`), as code-api and code-worker read them.
public struct DatabaseSettings: Sendable {
    public var location: DatabaseLocation
    /// For PostgreSQL; wins over a password in the URL.
    public var password: String?

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        do {
            location = try DatabaseLocation(url: environment.string("DATABASE_URL", default: DatabaseLocation.defaultURL))
        } catch {
            throw ConfigurationError("DATABASE_URL", "\(error)")
        }
        password = try environment.secret("DATABASE_PASSWORD")
    }
}
