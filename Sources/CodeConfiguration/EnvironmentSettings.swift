import Configuration
import Foundation

/// A setting that is missing or invalid. The executables print `description` as one line and exit 78
/// (`EX_CONFIG` from sysexits.h), so an orchestrator sees a configuration problem, not a crash.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The environment variable at fault, e.g. `PORT` or `CODE_ADMIN_KEY_FILE`.
    public let variable: String
    public let reason: String

    public init(_ variable: String, _ reason: String) {
        self.variable = variable
        self.reason = reason
    }

    public var description: String { "\(variable): \(reason)" }

    /// The exit code for configuration errors (sysexits.h `EX_CONFIG`).
    public static let exitCode: Int32 = 78
}

/// Reads settings from environment variables through swift-configuration.
///
/// Settings are named by their environment variable (`DATABASE_URL`) so that error messages name exactly
/// what an operator sets. Every secret also accepts `NAME_FILE`, a path whose content is the value, the way
/// Docker and Kubernetes mount secrets; setting both is an error because it is ambiguous.
public struct EnvironmentSettings: Sendable {
    private let reader: ConfigReader

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let provider = EnvironmentVariablesProvider(
            environmentVariables: environment,
            // Values of secrets never appear in swift-configuration's access reports.
            secretsSpecifier: .dynamic { name, _ in Self.looksSecret(name) }
        )
        self.reader = ConfigReader(provider: provider)
    }

    private static func looksSecret(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["KEY", "TOKEN", "SECRET", "PASSWORD"].contains { upper.contains($0) } && !upper.hasSuffix("_FILE")
    }

    /// `DATABASE_URL` -> `database.url`, the key swift-configuration's environment provider maps back to it.
    private static func key(_ variable: String) -> ConfigKey {
        ConfigKey(variable.lowercased().split(separator: "_").map(String.init))
    }

    /// The raw value, with surrounding whitespace removed; empty counts as unset.
    public func string(_ variable: String) -> String? {
        guard let value = reader.string(forKey: Self.key(variable)) else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    public func string(_ variable: String, default defaultValue: String) -> String {
        string(variable) ?? defaultValue
    }

    public func requiredString(_ variable: String) throws(ConfigurationError) -> String {
        guard let value = string(variable) else { throw ConfigurationError(variable, "is required") }
        return value
    }

    /// A secret from `NAME` or from the file named by `NAME_FILE`.
    public func secret(_ variable: String) throws(ConfigurationError) -> String? {
        let direct = reader.string(forKey: Self.key(variable), isSecret: true)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .flatMap { $0.isEmpty ? nil : $0 }
        let fileVariable = variable + "_FILE"
        guard let path = string(fileVariable) else { return direct }
        if direct != nil {
            throw ConfigurationError(variable, "set either \(variable) or \(fileVariable), not both")
        }
        let contents: String
        do {
            contents = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(fileVariable, "cannot read secret file '\(path)'")
        }
        // Secret files conventionally end with a newline; the value is the content without it.
        let value = contents.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw ConfigurationError(fileVariable, "secret file '\(path)' is empty") }
        return value
    }

    public func int(_ variable: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let raw = string(variable) else { return defaultValue }
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(variable, "expected an integer from \(range.lowerBound) to \(range.upperBound), got '\(raw)'")
        }
        return value
    }

    /// A duration in seconds; fractions are allowed (`0.5`).
    public func seconds(_ variable: String, default defaultValue: Duration, in range: ClosedRange<Double>) throws(ConfigurationError)
        -> Duration
    {
        guard let raw = string(variable) else { return defaultValue }
        guard let value = Double(raw), value.isFinite, range.contains(value) else {
            throw ConfigurationError(variable, "expected a number of seconds from \(range.lowerBound) to \(range.upperBound), got '\(raw)'")
        }
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    public func choice<Value: RawRepresentable & CaseIterable>(_ variable: String, default defaultValue: Value) throws(ConfigurationError)
        -> Value
    where Value.RawValue == String {
        guard let raw = string(variable) else { return defaultValue }
        guard let value = Value(rawValue: raw.lowercased()) else {
            let allowed = Value.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigurationError(variable, "expected one of \(allowed), got '\(raw)'")
        }
        return value
    }

    /// A comma-separated list; blank entries are dropped.
    public func list(_ variable: String) -> [String] {
        (string(variable) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Shared-secret bearer tokens from `NAME` or `NAME_FILE`: separated by commas or newlines, each at
    /// least `minimumLength` characters. `required`: at least one (otherwise none is allowed, and a
    /// service that has none must refuse every request that needs one).
    public func bearerTokens(
        _ variable: String, purpose: String, required: Bool = true, minimumLength: Int = 16
    ) throws(ConfigurationError) -> [String] {
        let tokens = (try secret(variable) ?? "")
            .split(whereSeparator: { $0 == "," || $0 == "\n" }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !tokens.isEmpty || !required else {
            throw ConfigurationError(variable, "is required: \(purpose) (or \(variable)_FILE)")
        }
        if let short = tokens.first(where: { $0.count < minimumLength }) {
            throw ConfigurationError(variable, "tokens must be at least \(minimumLength) characters (one has \(short.count))")
        }
        return tokens
    }

    /// An absolute http or https URL.
    public func httpURL(_ variable: String) throws(ConfigurationError) -> URL? {
        guard let raw = string(variable) else { return nil }
        guard let url = URL(string: raw), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil else {
            throw ConfigurationError(variable, "expected an http or https URL, got '\(raw)'")
        }
        return url
    }
}
