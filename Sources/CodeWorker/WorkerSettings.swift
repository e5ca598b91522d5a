import CodeConfiguration
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation

/// Settings of code-worker beyond the shared runtime settings.
public struct WorkerSettings: Sendable {
    public enum Driver: String, CaseIterable, Sendable {
        case simulated, webhook
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
    public var driver: Driver
    /// Simulated rollout time per replica.
    public var simulatedStep: Duration
    public var webhook: WebhookSettings?
    /// How long `verify` polls a deployment's `health_url` before failing it.
    public var verifyTimeout: Duration
    public var verifyInterval: Duration
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

        public init(url: URL, secret: String, timeout: Duration = .seconds(10), maxAttempts: Int = 5, initialBackoff: Duration = .milliseconds(500), maximumBackoff: Duration = .seconds(10)) {
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
        concurrency: Int = 4, leaseDuration: Duration = .seconds(30), maxAttempts: Int = 3, driver: Driver = .simulated,
        simulatedStep: Duration = .milliseconds(200), webhook: WebhookSettings? = nil, verifyTimeout: Duration = .seconds(60),
        verifyInterval: Duration = .seconds(1), maximumPollInterval: Duration = .milliseconds(250), policy: DeploymentPolicy = DeploymentPolicy()
    ) {
        self.database = database
        self.databasePassword = databasePassword
        self.workerID = workerID
        self.concurrency = concurrency
        self.leaseDuration = leaseDuration
        self.maxAttempts = maxAttempts
        self.driver = driver
        self.simulatedStep = simulatedStep
        self.webhook = webhook
        self.verifyTimeout = verifyTimeout
        self.verifyInterval = verifyInterval
        self.maximumPollInterval = maximumPollInterval
        self.policy = policy
    }

    public init(from environment: EnvironmentSettings) throws(ConfigurationError) {
        let database = try DatabaseSettings(from: environment)
        let driver = try environment.choice("CODE_ROLLOUT_DRIVER", default: Driver.simulated)
        var webhook: WebhookSettings?
        if driver == .webhook {
            guard let url = try environment.httpURL("CODE_WEBHOOK_URL") else {
                throw ConfigurationError("CODE_WEBHOOK_URL", "is required when CODE_ROLLOUT_DRIVER=webhook")
            }
            guard let secret = try environment.secret("CODE_WEBHOOK_SECRET") else {
                throw ConfigurationError("CODE_WEBHOOK_SECRET", "is required when CODE_ROLLOUT_DRIVER=webhook (or CODE_WEBHOOK_SECRET_FILE)")
            }
            webhook = WebhookSettings(
                url: url, secret: secret,
                timeout: try environment.seconds("CODE_WEBHOOK_TIMEOUT", default: .seconds(10), in: 0.1...300),
                maxAttempts: try environment.int("CODE_WEBHOOK_MAX_ATTEMPTS", default: 5, in: 1...20)
            )
        }
        let workerID = environment.string("WORKER_ID") ?? Self.defaultWorkerID()
        guard (1...100).contains(workerID.count), workerID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.:".contains($0)) }) else {
            throw ConfigurationError("WORKER_ID", "must be 1-100 characters of letters, digits, '-', '_', '.' or ':'")
        }
        self.init(
            database: database.location,
            databasePassword: database.password,
            workerID: workerID,
            concurrency: try environment.int("WORKER_CONCURRENCY", default: 4, in: 1...64),
            leaseDuration: try environment.seconds("CODE_LEASE_SECONDS", default: .seconds(30), in: 1...3600),
            maxAttempts: try environment.int("CODE_MAX_ATTEMPTS", default: 3, in: 1...100),
            driver: driver,
            simulatedStep: .milliseconds(try environment.int("CODE_SIMULATED_STEP_MS", default: 200, in: 0...600_000)),
            webhook: webhook,
            verifyTimeout: try environment.seconds("CODE_VERIFY_TIMEOUT", default: .seconds(60), in: 0.1...3600),
            verifyInterval: try environment.seconds("CODE_VERIFY_INTERVAL", default: .seconds(1), in: 0.01...60),
            maximumPollInterval: .milliseconds(try environment.int("CODE_POLL_INTERVAL_MS", default: 250, in: 10...60_000)),
            policy: DeploymentPolicy(allowedRegistries: environment.list("CODE_ALLOWED_REGISTRIES"))
        )
    }

    public static func defaultWorkerID() -> String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "worker"
        let safeHost = host.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
        return "\(safeHost.isEmpty ? "worker" : safeHost)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}
