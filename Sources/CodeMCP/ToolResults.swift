import CodeDomain
import Foundation
import MCP

/// Tool results: the value as `structuredContent` and the same JSON as text; API problems as `isError`
/// results carrying the problem.
enum ToolResults {
    static func result(_ value: some Encodable) throws -> CallTool.Result {
        let structured = try JSONValue.from(value)
        return CallTool.Result(
            content: [.text(text: JSONValue.text(structured), annotations: nil, _meta: nil)], structuredContent: Optional(structured),
            isError: false
        )
    }

    static func errorResult(_ failure: APIFailure) throws -> CallTool.Result {
        let structured: Value
        if let problem = failure.problem {
            structured = try JSONValue.from(problem)
        } else {
            structured = ["code": "api_unavailable", "detail": .string(failure.reason)]
        }
        return CallTool.Result(
            content: [.text(text: JSONValue.text(structured), annotations: nil, _meta: nil)], structuredContent: Optional(structured),
            isError: true
        )
    }
}

/// JSON values from Codable types, encoded as the API encodes them (RFC 3339 timestamps).
enum JSONValue {
    static func from(_ value: some Encodable) throws -> Value {
        try JSONDecoder().decode(Value.self, from: CodeJSON.encoder.encode(value))
    }

    static func text(_ value: Value) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }
}
