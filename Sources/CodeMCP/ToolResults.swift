import CodeDomain
import Foundation
import MCP

/// Tool results: the value as `structuredContent` and the same JSON as text; API problems as `isError`
/// results carrying the problem.
enum ToolResults {
    static func result(_ value: some Encodable) throws -> CallTool.Result {
        let (structured, text) = try JSONValue.encoded(value)
        return CallTool.Result(
            content: [.text(text: text, annotations: nil, _meta: nil)], structuredContent: Optional(structured), isError: false
        )
    }

    static func errorResult(_ failure: APIFailure) throws -> CallTool.Result {
        let (structured, text) =
            try failure.problem.map { try JSONValue.encoded($0) }
            ?? JSONValue.encoded(["code": "api_unavailable", "detail": failure.reason])
        return CallTool.Result(
            content: [.text(text: text, annotations: nil, _meta: nil)], structuredContent: Optional(structured), isError: true
        )
    }
}

/// JSON values from Codable types, encoded as the API encodes them (RFC 3339 timestamps).
///
/// Not through the SDK's `Value.init(from:)`: it tests every string for a `data:` URL with a regular
/// expression it compiles anew for each string, which was 70 % of code-mcp's CPU time on a
/// `list_deployments` call (~40 ms for 20 deployments). A string of an API answer is a string.
enum JSONValue {
    /// The value as the SDK's `Value` and as JSON text, from one encoding.
    static func encoded(_ value: some Encodable) throws -> (value: Value, text: String) {
        let bytes = try CodeJSON.encoder.encode(value)
        return (try JSONDecoder().decode(PlainValue.self, from: bytes).value, String(decoding: bytes, as: UTF8.self))
    }

    static func from(_ value: some Encodable) throws -> Value {
        try encoded(value).value
    }

    /// JSON text alone, for answers that carry no structured value (resources).
    static func text(_ value: some Encodable) throws -> String {
        String(decoding: try CodeJSON.encoder.encode(value), as: UTF8.self)
    }

    /// A JSON value as the SDK's `Value`, strings kept as strings. Strings first: they are most of an
    /// answer's values, and each failed attempt costs a decoding error.
    private struct PlainValue: Decodable {
        let value: Value

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() {
                value = .null
            } else if let string = try? container.decode(String.self) {
                value = .string(string)
            } else if let bool = try? container.decode(Bool.self) {
                value = .bool(bool)
            } else if let int = try? container.decode(Int.self) {
                value = .int(int)
            } else if let double = try? container.decode(Double.self) {
                value = .double(double)
            } else if let array = try? container.decode([PlainValue].self) {
                value = .array(array.map(\.value))
            } else {
                value = .object(try container.decode([String: PlainValue].self).mapValues(\.value))
            }
        }
    }
}
