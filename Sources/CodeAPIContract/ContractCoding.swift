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
