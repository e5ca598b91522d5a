import CodeAPIContract
import CodeDomain
import Foundation
import MCP

/// A tool call's answer: the JSON of its value, which is both the result's `structuredContent` and its
/// text content (a tool with an output schema returns both), and whether it reports an API problem
/// (`isError`, carrying the problem).
///
/// It is kept as JSON and written into the JSON-RPC answer as it is (`resultJSON`), not as the SDK's
/// `CallTool.Result`: that holds the structured value as the SDK's `Value`, and building one costs a
/// decoding of the JSON (`Value.init(from:)` also tests every string for a `data:` URL with a regular
/// expression it compiles anew each time) and an encoding again, ~1 ms of a 20-deployment list.
struct ToolAnswer: Sendable {
    /// The value's JSON, encoded as the API encodes it (RFC 3339 timestamps).
    let json: Data
    let isError: Bool

    static func value(_ value: some Encodable) throws -> ToolAnswer {
        ToolAnswer(json: try CodeJSON.encoder.encode(value), isError: false)
    }

    /// The answer of one code-api call whose decoded value is the tool's value: the body code-api sent,
    /// once the generated client has decoded it, when it is as code-api writes it (`isPassable`);
    /// otherwise, or when `call` made no call or more than one, the decoded value encoded again.
    static func passingOn(_ call: () async throws -> some Encodable) async throws -> ToolAnswer {
        let body = APIAnswerBody()
        let value = try await APICallMiddleware.$answerBody.withValue(body) { try await call() }
        guard let json = body.json, isPassable(json) else { return try .value(value) }
        return ToolAnswer(json: json, isError: false)
    }

    /// Whether a body the generated client decoded can be the tool's structured content as it is: one JSON
    /// object on one line, as code-api's encoder writes it. The decoder checks types and required fields,
    /// not everything the tool's output schema says: it reads `null` as absent (the schema allows no
    /// `null`), and a line break would end the event's `data:` line early. Bodies with either (any `null`
    /// bytes, even inside a string) are encoded again from the decoded value, which omits absent fields.
    static func isPassable(_ json: Data) -> Bool {
        json.first == UInt8(ascii: "{") && json.last == UInt8(ascii: "}") && !json.hasLineBreak
            && !json.containsBytes(of: "null")
    }

    static func failure(_ failure: APIFailure) throws -> ToolAnswer {
        let json =
            try failure.problem.map { try CodeJSON.encoder.encode($0) }
            ?? CodeJSON.encoder.encode(["code": "api_unavailable", "detail": failure.reason])
        return ToolAnswer(json: json, isError: true)
    }

    /// The text content: the same JSON.
    var text: String { String(decoding: json, as: UTF8.self) }

    /// The JSON-RPC `result`: `{"content":[{"type":"text","text":…}],"isError":…,"structuredContent":…}`.
    /// The content and the flag are encoded by the SDK's types; the structured content is `json` itself.
    /// Written by the contract's encoder, which writes as it encodes: `JSONEncoder` built a tree of boxed
    /// values first and then escaped the text content (the whole JSON again) scalar by scalar, 6 % of
    /// code-mcp's CPU on a list of 20 (docs/performance.md, twenty-first round).
    func resultJSON() throws -> Data {
        struct Head: Encodable {
            let content: [Tool.Content]
            let isError: Bool
        }
        let head = try ContractJSONEncoder().encode(Head(content: [.text(text: text, annotations: nil, _meta: nil)], isError: isError))
        let member = Array(#","structuredContent":"#.utf8)
        // `Head` encodes as an object: its closing brace is replaced by the structured content and a new one,
        // written into room made for all of it (growing a `Data` as the parts came copied the answer again).
        var result = Data(capacity: head.count - 1 + member.count + json.count + 1)
        result.append(contentsOf: head.dropLast())
        result.append(contentsOf: member)
        result.append(json)
        result.append(UInt8(ascii: "}"))
        return result
    }
}

/// JSON text of Codable values, encoded as the API encodes them, for answers that carry no structured
/// value (resources).
enum JSONValue {
    static func text(_ value: some Encodable) throws -> String {
        String(decoding: try CodeJSON.encoder.encode(value), as: UTF8.self)
    }
}
