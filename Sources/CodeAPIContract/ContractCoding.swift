import CodeDomain
import Foundation
import OpenAPIRuntime

extension Configuration {
    /// How code-api and code-mcp's client code the contract's bodies: timestamps in RFC 3339 UTC with
    /// milliseconds, compact JSON without escaped slashes, as `CodeJSON` (which the worker's webhook uses).
    ///
    /// Not the runtime's defaults: they pretty-print and sort every object's keys, and its ISO 8601
    /// transcoder formats through a locked `ISO8601DateFormatter`; encoding was 40 % of a list request's
    /// CPU time with them. JSON objects are unordered, and clients parse rather than diff the bytes.
    public static let contract = Configuration(
        dateTranscoder: ContractDateTranscoder(), jsonEncodingOptions: [.withoutEscapingSlashes]
    )
}

/// The contract's `date-time` strings: `CodeJSON.format` (e.g. `2026-12-02T17:20:36.123Z`) out, and in,
/// any RFC 3339 timestamp, with or without fractional seconds.
public struct ContractDateTranscoder: DateTranscoder {
    public init() {}

    public func encode(_ date: Date) throws -> String { CodeJSON.format(date) }

    public func decode(_ text: String) throws -> Date {
        guard let date = CodeJSON.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not an RFC 3339 timestamp: \(text)"))
        }
        return date
    }
}

/// A schema whose responses code-api writes with `ContractJSONEncoder` instead of the runtime's
/// `JSONEncoder` (CodeAPI's `Converter.setResponseBodyAsJSON`, which the generated server then calls for
/// it). Every response body of the contract is one; a new one without the mark is still answered, through
/// the runtime's encoder, and `ContractJSONEncoderTests` names the ones it checks.
public protocol ContractResponseBody: Encodable {}

extension Components.Schemas.Problem: ContractResponseBody {}
extension Components.Schemas.Deployment: ContractResponseBody {}
extension Components.Schemas.DeploymentPage: ContractResponseBody {}
extension Components.Schemas.ValidationResult: ContractResponseBody {}
extension Components.Schemas.EventPage: ContractResponseBody {}
extension Components.Schemas.Manifests: ContractResponseBody {}
extension Components.Schemas.Key: ContractResponseBody {}
extension Components.Schemas.CreatedKey: ContractResponseBody {}
extension Components.Schemas.KeyPage: ContractResponseBody {}
extension Components.Schemas.AuditPage: ContractResponseBody {}
extension Components.Schemas.Policy: ContractResponseBody {}
