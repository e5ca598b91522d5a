import CodeConfiguration
import Foundation
import Logging

/// Settings every service shares. Each default is written once, in `Defaults`, for the initialiser
/// tests call and for the environment alike.
public struct RuntimeSettings: Sendable {
    public enum LogFormat: String, CaseIterable, Sendable {
        case json, text
    }

    public enum Defaults {
        public static let host = "0.0.0.0"
        public static let metricsPort = 9090
        public static let logLevel: Logger.Level = .info
        public static let shutdownTimeout: Duration = .seconds(10)
        /// Long enough for a client's keep-alive pool (most keep connections 5 to 60 s), short enough that
        /// idle or stalled connections do not pile up: nginx's `keepalive_timeout` default is 75 s.
        public static let idleTimeout: Duration = .seconds(30)
    }

    public var host: String
    public var port: Int
    /// Address of the Prometheus listener (`METRICS_HOST`, default `HOST`): bind it to a private interface
    /// when the service port faces the public and the scraper does not.
    public var metricsHost: String
    /// Port of the separate Prometheus listener; `nil` when `METRICS_PORT=0` disables it.
    public var metricsPort: Int?
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// How long in-flight work may take to finish after SIGTERM before it is cancelled.
    public var shutdownTimeout: Duration
    /// A connection on which nothing arrives for this long is closed (`HTTP_IDLE_TIMEOUT`): between requests,
    /// and while a request's head or body is being read (a client that stops sending, or sends a head a byte
    /// at a time). Responses being written are not cut, however long they take.
    public var idleTimeout: Duration
    /// Whether spans are exported (an OTLP endpoint is set; see `ServiceTracing`).
    public var tracing: Bool

    /// `metricsPort` nil: no metrics listener (tests read the registry directly).
    public init(
        host: String = Defaults.host,
        port: Int,
        metricsHost: String? = nil,
        metricsPort: Int? = nil,
        logLevel: Logger.Level = Defaults.logLevel,
        logFormat: LogFormat = .json,
        shutdownTimeout: Duration = Defaults.shutdownTimeout,
        idleTimeout: Duration = Defaults.idleTimeout,
        tracing: Bool = false
    ) {
        self.host = host
        self.port = port
        self.metricsHost = metricsHost ?? host
        self.metricsPort = metricsPort
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.shutdownTimeout = shutdownTimeout
        self.idleTimeout = idleTimeout
        self.tracing = tracing
    }

    public init(from settings: EnvironmentSettings, defaultPort: Int) throws(ConfigurationError) {
        let port = try settings.int("PORT", default: defaultPort, in: 1...65535)
        let metricsPort = try settings.int("METRICS_PORT", default: Defaults.metricsPort, in: 0...65535)
        if metricsPort == port {
            throw ConfigurationError("METRICS_PORT", "must differ from PORT (\(port))")
        }
        let levelName = settings.string("LOG_LEVEL", default: Defaults.logLevel.rawValue).lowercased()
        guard let level = Logger.Level(rawValue: levelName == "warn" ? "warning" : levelName) else {
            let allowed = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError("LOG_LEVEL", "expected one of \(allowed), got '\(levelName)'")
        }
        // JSON lines unless a person is watching a terminal.
        let defaultFormat: LogFormat = isatty(STDOUT_FILENO) == 1 ? .text : .json
        let host = settings.string("HOST", default: Defaults.host)
        self.init(
            host: host,
            port: port,
            metricsHost: settings.string("METRICS_HOST", default: host),
            metricsPort: metricsPort == 0 ? nil : metricsPort,
            logLevel: level,
            logFormat: try settings.choice("LOG_FORMAT", default: defaultFormat),
            shutdownTimeout: try settings.seconds("SHUTDOWN_TIMEOUT", default: Defaults.shutdownTimeout, in: 0...3600),
            idleTimeout: try settings.seconds("HTTP_IDLE_TIMEOUT", default: Defaults.idleTimeout, in: 1...3600),
            tracing: ServiceTracing.isRequested(by: settings)
        )
    }
}
