import CodeConfiguration
import Foundation

/// Settings of code-mcp beyond the shared runtime settings. Each default is written once, in
/// `Defaults`, for the initialiser tests call and for the environment alike.
public struct MCPSettings: Sendable {
    public enum Defaults {
        public static let apiURL = URL(string: "http://127.0.0.1:8000")!
        public static let workerURL = URL(string: "http://127.0.0.1:8001")!
        public static let allowedHosts = ["localhost", "127.0.0.1", "[::1]"]
        public static let allowedOrigins = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"]
        public static let sessionIdleTimeout: Duration = .seconds(1800)
        public static let maxSessions = 100
        /// A session ends this long after it opened, however busy (8 hours: a working day's agent session).
        public static let sessionMaxLifetime: Duration = .seconds(8 * 3600)
        /// What a session keeps for `Last-Event-ID` replay: its most recent messages up to this many bytes.
        public static let sessionReplayBytes = 512 * 1024
        public static let apiTimeout: Duration = .seconds(10)
        public static let waitTimeout: Duration = .seconds(300)
        public static let waitPollInterval: Duration = .milliseconds(250)
    }

    /// Where code-api listens; code-mcp is its client and never touches the database.
    public var apiURL: URL
    /// Where code-worker listens, for `service_health`.
    public var workerURL: URL
    /// code-mcp's own operator key for code-api.
    public var apiKey: String
    /// Bearer tokens MCP clients must send on `/mcp`.
    public var authTokens: [String]
    /// `Host` values accepted on `/mcp`: `host` (any port) or `host:port`.
    public var allowedHosts: [String]
    /// `Origin` values accepted on `/mcp` when a request has one: `scheme://host[:port]`, `:*` for any port.
    public var allowedOrigins: [String]
    public var sessionIdleTimeout: Duration
    /// `MCP_SESSION_MAX_LIFETIME`: seconds from opening after which a session ends even if in use.
    public var sessionMaxLifetime: Duration
    /// `MCP_SESSION_REPLAY_BYTES`: the replay buffer of each session, in bytes (0: no replay).
    public var sessionReplayBytes: Int
    public var maxSessions: Int
    /// Timeout of each call to code-api.
    public var apiTimeout: Duration
    /// How long `create_deployment` with `wait` follows a deployment.
    public var waitTimeout: Duration
    /// How often `wait` polls the deployment.
    public var waitPollInterval: Duration

    public init(
        apiURL: URL, workerURL: URL, apiKey: String, authTokens: [String],
        allowedHosts: [String] = Defaults.allowedHosts, allowedOrigins: [String] = Defaults.allowedOrigins,
        sessionIdleTimeout: Duration = Defaults.sessionIdleTimeout, sessionMaxLifetime: Duration = Defaults.sessionMaxLifetime,
        sessionReplayBytes: Int = Defaults.sessionReplayBytes, maxSessions: Int = Defaults.maxSessions,
        apiTimeout: Duration = Defaults.apiTimeout, waitTimeout: Duration = Defaults.waitTimeout,
        waitPollInterval: Duration = Defaults.waitPollInterval
    ) {
        self.apiURL = apiURL
        self.workerURL = workerURL
        self.apiKey = apiKey
        self.authTokens = authTokens
        self.allowedHosts = allowedHosts
        self.allowedOrigins = allowedOrigins
        self.sessionIdleTimeout = sessionIdleTimeout
        self.sessionMaxLifetime = sessionMaxLifetime
        self.sessionReplayBytes = sessionReplayBytes
        self.maxSessions = maxSessions
        self.apiTimeout = apiTimeout
        self.waitTimeout = waitTimeout
        self.waitPollInterval = waitPollInterval
    }

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        guard let apiKey = try environment.secret("MCP_API_KEY") else {
            throw ConfigurationError("MCP_API_KEY", "is required: code-mcp's operator key for code-api (or MCP_API_KEY_FILE)")
        }
        let tokens = try environment.bearerTokens("MCP_AUTH_TOKENS", purpose: "the bearer tokens MCP clients use")
        let hosts = environment.list("MCP_ALLOWED_HOSTS")
        let origins = environment.list("MCP_ALLOWED_ORIGINS")
        if let origin = origins.first(where: { !($0.hasPrefix("http://") || $0.hasPrefix("https://")) }) {
            throw ConfigurationError("MCP_ALLOWED_ORIGINS", "entries are origins like http://localhost:6274, not '\(origin)'")
        }
        self.init(
            apiURL: try environment.httpURL("CODE_API_URL") ?? Defaults.apiURL,
            workerURL: try environment.httpURL("CODE_WORKER_URL") ?? Defaults.workerURL,
            apiKey: apiKey,
            authTokens: tokens,
            allowedHosts: hosts.isEmpty ? Defaults.allowedHosts : hosts,
            allowedOrigins: origins.isEmpty ? Defaults.allowedOrigins : origins,
            sessionIdleTimeout: try environment.seconds("MCP_SESSION_IDLE_TIMEOUT", default: Defaults.sessionIdleTimeout, in: 1...86_400),
            sessionMaxLifetime: try environment.seconds(
                "MCP_SESSION_MAX_LIFETIME", default: Defaults.sessionMaxLifetime, in: 1...604_800),
            sessionReplayBytes: try environment.int(
                "MCP_SESSION_REPLAY_BYTES", default: Defaults.sessionReplayBytes, in: 0...(64 * 1024 * 1024)),
            maxSessions: try environment.int("MCP_MAX_SESSIONS", default: Defaults.maxSessions, in: 1...10_000),
            apiTimeout: try environment.seconds("CODE_API_TIMEOUT", default: Defaults.apiTimeout, in: 0.1...300),
            waitTimeout: try environment.seconds("MCP_WAIT_TIMEOUT", default: Defaults.waitTimeout, in: 1...3600)
        )
    }
}
