import CodeConfiguration

/// Settings of __NAME__ beyond the shared runtime settings (`HOST`, `PORT`, `METRICS_PORT`, `LOG_LEVEL`,
/// `LOG_FORMAT`, `SHUTDOWN_TIMEOUT`, which `ServiceLauncher` reads).
///
/// Add a setting here: a property, a default in the memberwise initialiser (the one tests call), and
/// one line in `init(from:)` naming its environment variable. An invalid value stops the process at
/// start-up with a line naming the variable and exit code 78.
public struct __STEM__Settings: Sendable {
    /// Bearer tokens clients send on `/v1` (`AUTH_TOKENS` or `AUTH_TOKENS_FILE`, comma-separated). None
    /// set: the service starts and refuses every `/v1` request.
    public var authTokens: [String]

    public init(authTokens: [String]) {
        self.authTokens = authTokens
    }

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        self.init(
            authTokens: try environment.bearerTokens("AUTH_TOKENS", purpose: "the bearer tokens clients of __NAME__ use", required: false))
    }
}
