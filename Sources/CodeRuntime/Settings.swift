import CodeConfiguration
import Foundation
import Logging

/// Settings every service shares.
public struct RuntimeSettings: Sendable {
    public enum LogFormat: String, CaseIterable, Sendable {
        case json, text
    }

    public var host: String
    public var port: Int
    /// Port of the separate Prometheus listener; `nil` when `METRICS_PORT=0` disables it.
    public var metricsPort: Int?
    public var logLevel: Logger.Level
    public var logFormat: LogFormat
    /// How long in-flight work may take to finish after SIGTERM before it is cancelled.
    public var shutdownTimeout: Duration

    public init(
        host: String = "0.0.0.0",
        port: Int,
        metricsPort: Int? = nil,
        logLevel: Logger.Level = .info,
        logFormat: LogFormat = .json,
        shutdownTimeout: Duration = .seconds(10)
    ) {
        self.host = host
        self.port = port
        self.metricsPort = metricsPort
        self.logLevel = logLevel
        self.logFormat = logFormat
        self.shutdownTimeout = shutdownTimeout
    }

    public init(from settings: EnvironmentSettings, defaultPort: Int) throws(ConfigurationError) {
        let port = try settings.int("PORT", default: defaultPort, in: 1...65535)
        let metricsPort = try settings.int("METRICS_PORT", default: 9090, in: 0...65535)
        if metricsPort == port {
            throw ConfigurationError("METRICS_PORT", "must differ from PORT (\(port))")
        }
        let levelName = settings.string("LOG_LEVEL", default: "info").lowercased()
        guard let level = Logger.Level(rawValue: levelName == "warn" ? "warning" : levelName) else {
            let allowed = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError("LOG_LEVEL", "expected one of \(allowed), got '\(levelName)'")
        }
        // JSON lines unless a person is watching a terminal.
        let defaultFormat: LogFormat = isatty(STDOUT_FILENO) == 1 ? .text : .json
        self.init(
            host: settings.string("HOST", default: "0.0.0.0"),
            port: port,
            metricsPort: metricsPort == 0 ? nil : metricsPort,
            logLevel: level,
            logFormat: try settings.choice("LOG_FORMAT", default: defaultFormat),
            shutdownTimeout: try settings.seconds("SHUTDOWN_TIMEOUT", default: .seconds(10), in: 0...3600)
        )
    }
}
