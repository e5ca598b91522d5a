import CodeConfiguration
import CodeDomain
import CodeRuntime
import CodeStore

/// Settings of code-api beyond the shared runtime settings.
public struct APISettings: Sendable {
    public var database: DatabaseLocation
    /// `DATABASE_PASSWORD` / `DATABASE_PASSWORD_FILE`, for PostgreSQL.
    public var databasePassword: String?
    /// `CODE_ADMIN_KEY` / `_FILE`: an admin key with this secret is guaranteed to exist.
    public var adminKey: String?
    /// `CODE_MCP_API_KEY` / `_FILE`: an operator key for code-mcp with this secret is guaranteed to exist.
    public var mcpKey: String?
    public var policy: DeploymentPolicy
    /// `CODE_KEY_CACHE_SECONDS` (0 to 1, default 1): how long a key found by its secret is kept before it
    /// is looked up again; 0 looks it up on every request. A key revoked through another replica is refused
    /// at most this long after (`APIKeyCache`).
    public var keyCacheLifetime: Duration

    public init(
        database: DatabaseLocation, databasePassword: String? = nil, adminKey: String? = nil, mcpKey: String? = nil,
        policy: DeploymentPolicy = DeploymentPolicy(), keyCacheLifetime: Duration = APIKeyCache.longestLifetime
    ) {
        self.database = database
        self.databasePassword = databasePassword
        self.adminKey = adminKey
        self.mcpKey = mcpKey
        self.policy = policy
        self.keyCacheLifetime = keyCacheLifetime
    }

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        let database = try DatabaseSettings(from: environment)
        let adminKey = try environment.secret("CODE_ADMIN_KEY")
        let mcpKey = try environment.secret("CODE_MCP_API_KEY")
        for (variable, key) in [("CODE_ADMIN_KEY", adminKey), ("CODE_MCP_API_KEY", mcpKey)] {
            if let key, !APIKeySecret.isWellFormed(key) {
                throw ConfigurationError(
                    variable,
                    "must be 'code_' followed by at least 43 URL-safe base64 characters (generate one with `code-api keys generate`)")
            }
        }
        self.init(
            database: database.location,
            databasePassword: database.password,
            adminKey: adminKey,
            mcpKey: mcpKey,
            policy: DeploymentPolicy(allowedRegistries: environment.list("CODE_ALLOWED_REGISTRIES")),
            keyCacheLifetime: try environment.seconds("CODE_KEY_CACHE_SECONDS", default: APIKeyCache.longestLifetime, in: 0...1)
        )
    }
}
