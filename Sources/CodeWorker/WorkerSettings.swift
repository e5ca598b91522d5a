import CodeConfiguration
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation

/// Settings of code-worker beyond the shared runtime settings. Each default is written once, in
/// `Defaults`, for the initialiser tests call and for the environment alike.
public struct WorkerSettings: Sendable {
    /// How a deployment is rolled out; the webhook driver's settings exist only with it.
    public enum Rollout: Sendable {
        /// Deterministic: `step` per replica.
        case simulated(step: Duration)
        /// The manifests POSTed to a receiver (`CODE_WEBHOOK_URL`).
        case webhook(WebhookSettings)

        /// `CODE_ROLLOUT_DRIVER`'s value for it.
        public var driverName: String {
            switch self {
            case .simulated: "simulated"
            case .webhook: "webhook"
            }
        }
    }

    public enum Defaults {
        public static let concurrency = 4
        public static let leaseDuration: Duration = .seconds(30)
        public static let maxAttempts = 3
        public static let simulatedStep: Duration = .milliseconds(200)
        public static let verifyTimeout: Duration = .seconds(60)
        public static let verifyInterval: Duration = .seconds(1)
        public static let maximumPollInterval: Duration = .milliseconds(250)
        public static let webhookTimeout: Duration = .seconds(10)
        public static let webhookMaxAttempts = 5
        public static let webhookInitialBackoff: Duration = .milliseconds(500)
        public static let webhookMaximumBackoff: Duration = .seconds(10)
        public static let webhookSecretMinimumBytes = 32
    }

    public var database: DatabaseLocation
    public var databasePassword: String?
    /// Names this process in leases and events: `<host>-<pid>` unless `WORKER_ID` says otherwise.
    public var workerID: String
    /// Pipelines run at once by this process.
    public var concurrency: Int
    /// A claim's lease; renewed every third of it.
    public var leaseDuration: Duration
    /// Claims a deployment may get before an expired lease fails it.
    public var maxAttempts: Int
    public var rollout: Rollout
    /// How long `verify` polls a deployment's `health_url` before failing it.
    public var verifyTimeout: Duration
    public var verifyInterval: Duration
    /// What `health_url` may reach beyond public addresses (`CODE_HEALTH_URL_ALLOW`): by default no
    /// loopback, private, link-local or internal name, so that a deployment cannot make the worker probe
    /// its own network.
    public var healthURLAllowlist: HealthURLAllowlist
    /// The longest wait between claim attempts when idle. SQLite has no notifications, so this bounds the
    /// time from insert to claim; PostgreSQL is woken by NOTIFY and polls as a fallback.
    public var maximumPollInterval: Duration
    public var policy: DeploymentPolicy

    public struct WebhookSettings: Sendable {
        public var url: URL
        public var secret: String
        public var timeout: Duration
        public var maxAttempts: Int
        /// First retry delay; doubles per attempt, with full jitter, up to `maximumBackoff`.
        public var initialBackoff: Duration
        public var maximumBackoff: Duration

        public init(
            url: URL, secret: String, timeout: Duration = Defaults.webhookTimeout, maxAttempts: Int = Defaults.webhookMaxAttempts,
            initialBackoff: Duration = Defaults.webhookInitialBackoff, maximumBackoff: Duration = Defaults.webhookMaximumBackoff
        ) {
            self.url = url
            self.secret = secret
            self.timeout = timeout
            self.maxAttempts = maxAttempts
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
        }
    }

    public init(
        database: DatabaseLocation, databasePassword: String? = nil, workerID: String = WorkerSettings.defaultWorkerID(),
        concurrency: Int = Defaults.concurrency, leaseDuration: Duration = Defaults.leaseDuration, maxAttempts: Int = Defaults.maxAttempts,
        rollout: Rollout = .simulated(step: Defaults.simulatedStep), verifyTimeout: Duration = Defaults.verifyTimeout,
        verifyInterval: Duration = Defaults.verifyInterval, healthURLAllowlist: HealthURLAllowlist = .none,
        maximumPollInterval: Duration = Defaults.maximumPollInterval, policy: DeploymentPolicy = DeploymentPolicy()
    ) {
        self.database = database
        self.databasePassword = databasePassword
        self.workerID = workerID
        self.concurrency = concurrency
        self.leaseDuration = leaseDuration
        self.maxAttempts = maxAttempts
        self.rollout = rollout
        self.verifyTimeout = verifyTimeout
        self.verifyInterval = verifyInterval
        self.healthURLAllowlist = healthURLAllowlist
        self.maximumPollInterval = maximumPollInterval
        self.policy = policy
    }

    enum DriverName: String, CaseIterable {
        case simulated, webhook
    }

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        let database = try DatabaseSettings(from: environment)
        let rollout: Rollout
        switch try environment.choice("CODE_ROLLOUT_DRIVER", default: DriverName.simulated) {
        case .simulated:
            let milliseconds = try environment.int(
                "CODE_SIMULATED_STEP_MS", default: Int(Defaults.simulatedStep / .milliseconds(1)), in: 0...600_000
            )
            rollout = .simulated(step: .milliseconds(milliseconds))
        case .webhook:
            guard let url = try environment.httpURL("CODE_WEBHOOK_URL") else {
                throw ConfigurationError("CODE_WEBHOOK_URL", "is required when CODE_ROLLOUT_DRIVER=webhook")
            }
            guard let secret = try environment.secret("CODE_WEBHOOK_SECRET") else {
                throw ConfigurationError(
                    "CODE_WEBHOOK_SECRET", "is required when CODE_ROLLOUT_DRIVER=webhook (or CODE_WEBHOOK_SECRET_FILE)")
            }
            // An HMAC key is as strong as it is long: 32 bytes is SHA-256's output, below which a short,
            // guessable secret would let anyone forge rollouts.
            guard secret.utf8.count >= Defaults.webhookSecretMinimumBytes else {
                throw ConfigurationError(
                    "CODE_WEBHOOK_SECRET",
                    "must be at least \(Defaults.webhookSecretMinimumBytes) bytes (it has \(secret.utf8.count)); "
                        + "e.g. `head -c 32 /dev/urandom | base64`")
            }
            rollout = .webhook(
                WebhookSettings(
                    url: url, secret: secret,
                    timeout: try environment.seconds("CODE_WEBHOOK_TIMEOUT", default: Defaults.webhookTimeout, in: 0.1...300),
                    maxAttempts: try environment.int("CODE_WEBHOOK_MAX_ATTEMPTS", default: Defaults.webhookMaxAttempts, in: 1...20)
                )
            )
        }
        let healthURLAllowlist: HealthURLAllowlist
        do {
            healthURLAllowlist = try HealthURLAllowlist(parsing: environment.list("CODE_HEALTH_URL_ALLOW"))
        } catch {
            throw ConfigurationError("CODE_HEALTH_URL_ALLOW", "\(error); expected comma-separated CIDR blocks, addresses or host names")
        }
        let workerID = environment.string("WORKER_ID") ?? Self.defaultWorkerID()
        guard (1...100).contains(workerID.count), workerID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) })
        else {
            throw ConfigurationError("WORKER_ID", "must be 1-100 characters of letters, digits, '-', '_', '.' or ':'")
        }
        self.init(
            database: database.location,
            databasePassword: database.password,
            workerID: workerID,
            concurrency: try environment.int("WORKER_CONCURRENCY", default: Defaults.concurrency, in: 1...64),
            leaseDuration: try environment.seconds("CODE_LEASE_SECONDS", default: Defaults.leaseDuration, in: 1...3600),
            maxAttempts: try environment.int("CODE_MAX_ATTEMPTS", default: Defaults.maxAttempts, in: 1...100),
            rollout: rollout,
            verifyTimeout: try environment.seconds("CODE_VERIFY_TIMEOUT", default: Defaults.verifyTimeout, in: 0.1...3600),
            verifyInterval: try environment.seconds("CODE_VERIFY_INTERVAL", default: Defaults.verifyInterval, in: 0.01...60),
            healthURLAllowlist: healthURLAllowlist,
            maximumPollInterval: .milliseconds(
                try environment.int(
                    "CODE_POLL_INTERVAL_MS", default: Int(Defaults.maximumPollInterval / .milliseconds(1)), in: 10...60_000
                )
            ),
            policy: DeploymentPolicy(allowedRegistries: environment.list("CODE_ALLOWED_REGISTRIES"))
        )
    }

    public static func defaultWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "worker"
        let safeHost = host.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        return "\(safeHost.isEmpty ? "worker" : safeHost)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}
