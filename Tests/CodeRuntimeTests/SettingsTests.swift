import CodeConfiguration
import CodeRuntime
import Foundation
import Testing

@Suite("Configuration from the environment")
struct SettingsTests {
    @Test func defaultsApplyWhenNothingIsSet() throws {
        let settings = try RuntimeSettings(from: EnvironmentSettings(environment: [:]), defaultPort: 8001)
        #expect(settings.host == "0.0.0.0")
        #expect(settings.port == 8001)
        #expect(settings.metricsPort == 9090)
        #expect(settings.logLevel == .info)
        #expect(settings.shutdownTimeout == .seconds(10))
        #expect(settings.metricsHost == "0.0.0.0", "the metrics listener binds HOST unless METRICS_HOST says otherwise")
        #expect(settings.idleTimeout == .seconds(30))
        #expect(!settings.tracing, "tracing is off unless an OTLP endpoint is set")
    }

    @Test(
        arguments: [
            ([:], false),
            (["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"], true),
            (["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"], true),
            (["OTEL_EXPORTER_OTLP_ENDPOINT": "  "], false),
            (["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"], false),
            (["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"], false),
            (["OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "false"], true),
            (["OTEL_SERVICE_NAME": "code-api"], false),
        ] as [([String: String], Bool)])
    func tracingIsOnOnlyWithAnOTLPEndpoint(environment: [String: String], expected: Bool) throws {
        let settings = try RuntimeSettings(from: EnvironmentSettings(environment: environment), defaultPort: 8000)
        #expect(settings.tracing == expected, "\(environment)")
    }

    @Test func valuesAreReadFromTheirVariables() throws {
        let environment = EnvironmentSettings(environment: [
            "HOST": "127.0.0.1", "PORT": "9000", "METRICS_PORT": "0", "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "text", "SHUTDOWN_TIMEOUT": "2.5", "METRICS_HOST": "10.0.0.5", "HTTP_IDLE_TIMEOUT": "75",
        ])
        let settings = try RuntimeSettings(from: environment, defaultPort: 8000)
        #expect(settings.host == "127.0.0.1")
        #expect(settings.port == 9000)
        #expect(settings.metricsPort == nil, "METRICS_PORT=0 disables the metrics listener")
        #expect(settings.logLevel == .debug)
        #expect(settings.logFormat == .text)
        #expect(settings.shutdownTimeout == .milliseconds(2500))
        #expect(settings.metricsHost == "10.0.0.5")
        #expect(settings.idleTimeout == .seconds(75))
    }

    @Test(arguments: [
        ("PORT", "eighty", "PORT: expected an integer from 1 to 65535, got 'eighty'"),
        ("PORT", "70000", "PORT: expected an integer from 1 to 65535, got '70000'"),
        ("METRICS_PORT", "-1", "METRICS_PORT: expected an integer from 0 to 65535, got '-1'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: expected one of json, text, got 'xml'"),
        ("SHUTDOWN_TIMEOUT", "soon", "SHUTDOWN_TIMEOUT: expected a number of seconds from 0.0 to 3600.0, got 'soon'"),
        ("HTTP_IDLE_TIMEOUT", "0", "HTTP_IDLE_TIMEOUT: expected a number of seconds from 1.0 to 3600.0, got '0'"),
    ])
    func invalidValuesNameTheVariable(variable: String, value: String, message: String) {
        #expect(throws: ConfigurationError.self) {
            try RuntimeSettings(from: EnvironmentSettings(environment: [variable: value]), defaultPort: 8000)
        }
        do {
            _ = try RuntimeSettings(from: EnvironmentSettings(environment: [variable: value]), defaultPort: 8000)
        } catch {
            #expect(error.description == message)
            #expect(error.variable == variable)
        }
    }

    @Test func invalidLogLevelIsRejected() {
        #expect(throws: ConfigurationError("LOG_LEVEL", "expected one of trace, debug, info, notice, warning, error, critical, got 'loud'"))
        {
            try RuntimeSettings(from: EnvironmentSettings(environment: ["LOG_LEVEL": "loud"]), defaultPort: 8000)
        }
    }

    @Test func metricsPortMustDifferFromPort() {
        #expect(throws: ConfigurationError("METRICS_PORT", "must differ from PORT (9090)")) {
            try RuntimeSettings(from: EnvironmentSettings(environment: ["PORT": "9090"]), defaultPort: 8000)
        }
    }

    @Test func secretComesFromTheVariable() throws {
        let environment = EnvironmentSettings(environment: ["CODE_ADMIN_KEY": "  code_direct \n"])
        #expect(try environment.secret("CODE_ADMIN_KEY") == "code_direct")
        #expect(try EnvironmentSettings(environment: [:]).secret("CODE_ADMIN_KEY") == nil)
    }

    @Test func secretComesFromTheFileNamedByNameFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("secret-\(UUID().uuidString)")
        try "code_from_file\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let environment = EnvironmentSettings(environment: ["CODE_ADMIN_KEY_FILE": file.path])
        #expect(try environment.secret("CODE_ADMIN_KEY") == "code_from_file")
    }

    @Test func secretFileProblemsNameTheFileVariable() throws {
        let missing = EnvironmentSettings(environment: ["CODE_ADMIN_KEY_FILE": "/nonexistent/admin_key"])
        #expect(throws: ConfigurationError("CODE_ADMIN_KEY_FILE", "cannot read secret file '/nonexistent/admin_key'")) {
            try missing.secret("CODE_ADMIN_KEY")
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("empty-\(UUID().uuidString)")
        try "\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(throws: ConfigurationError("CODE_ADMIN_KEY_FILE", "secret file '\(file.path)' is empty")) {
            try EnvironmentSettings(environment: ["CODE_ADMIN_KEY_FILE": file.path]).secret("CODE_ADMIN_KEY")
        }
    }

    @Test func settingBothTheSecretAndItsFileIsAnError() {
        let both = EnvironmentSettings(environment: ["CODE_ADMIN_KEY": "a", "CODE_ADMIN_KEY_FILE": "/run/secrets/admin_key"])
        #expect(throws: ConfigurationError("CODE_ADMIN_KEY", "set either CODE_ADMIN_KEY or CODE_ADMIN_KEY_FILE, not both")) {
            try both.secret("CODE_ADMIN_KEY")
        }
    }

    @Test func listsAndURLs() throws {
        let environment = EnvironmentSettings(environment: ["LIST": " a, ,b ,c", "URL": "http://api:8000", "BAD_URL": "ftp://x"])
        #expect(environment.list("LIST") == ["a", "b", "c"])
        #expect(try environment.httpURL("URL")?.absoluteString == "http://api:8000")
        #expect(throws: ConfigurationError("BAD_URL", "expected an http or https URL, got 'ftp://x'")) {
            try environment.httpURL("BAD_URL")
        }
    }
}
