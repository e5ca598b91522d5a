import CodeAPIContract
import Foundation
import MCP
import Testing

@testable import CodeMCP

@Suite("Tool answers")
struct ToolAnswerTests {
    private struct Sample: Encodable {
        let text = "data:text/plain;base64,SGVsbG8="
        let count = 3
        let ratio = 0.5
        let flag = true
        let missing: String? = nil
        let nested = ["image": "ghcr.io/acme/web:1.0"]
        let list = [1, 2]
        let at = Date(timeIntervalSince1970: 1_764_000_000.125)
    }

    /// The answer code-mcp writes for a tool call is one the SDK's own client reads as a `CallTool` response.
    @Test func theDirectAnswerIsTheSDKsResponse() throws {
        let answer = try ToolAnswer.value(Sample())
        let bytes = try DirectRequests.response(id: .string("call-7"), result: answer.resultJSON())
        let response = try JSONDecoder().decode(Response<CallTool>.self, from: bytes)
        #expect(response.id == .string("call-7"))
        let result = try response.result.get()
        #expect(result.isError == false)
        guard case .text(let text, _, _) = try #require(result.content.first) else {
            Issue.record("not a text content: \(result.content)")
            return
        }
        // The text is the structured content's JSON.
        #expect(text == answer.text)
        let fromText = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary
        let envelope = try JSONSerialization.jsonObject(with: bytes) as? [String: Any]
        let structured = (envelope?["result"] as? [String: Any])?["structuredContent"] as? NSDictionary
        #expect(structured != nil && structured == fromText)

        // Values keep their JSON types, timestamps are the API's RFC 3339.
        #expect(structured?["text"] as? String == "data:text/plain;base64,SGVsbG8=")
        #expect(structured?["count"] as? Int == 3)
        #expect(structured?["ratio"] as? Double == 0.5)
        #expect(structured?["flag"] as? Bool == true)
        #expect(structured?["missing"] == nil)
        #expect(structured?["nested"] as? [String: String] == ["image": "ghcr.io/acme/web:1.0"])
        #expect(structured?["list"] as? [Int] == [1, 2])
        #expect(structured?["at"] as? String == "2025-11-24T16:00:00.125Z")

        let numbered = try DirectRequests.response(id: .number(42), result: answer.resultJSON())
        #expect(try JSONDecoder().decode(Response<CallTool>.self, from: numbered).id == .number(42))
    }

    /// The answer around the result, byte for byte, with each kind of id (one with a quote and a slash in it):
    /// the id as the SDK's encoder writes it, the result as it is.
    @Test func theDirectAnswerWrapsTheResultAsItIs() throws {
        let result = #"{"content":[],"isError":false,"structuredContent":{"a":"b/c"}}"#
        for (id, written) in [(ID.string("call-7"), #""call-7""#), (.number(42), "42"), (.string(#"a"b/c"#), #""a\"b/c""#)] {
            let bytes = try DirectRequests.response(id: id, result: Data(result.utf8))
            #expect(String(decoding: bytes, as: UTF8.self) == #"{"jsonrpc":"2.0","id":"# + written + #","result":"# + result + "}")
            #expect(try DirectRequests.encoder.encode(id) == Data(written.utf8))
        }
        // Ids with every kind of escape and bytes beyond ASCII: what the SDK's encoder writes.
        for id in [ID.string("a\nb\u{01}\\c\t"), .string("é😀\u{2028}\u{7F}"), .string(""), .number(-1), .number(Int.max)] {
            let bytes = try DirectRequests.response(id: id, result: Data(result.utf8))
            let expected =
                Data(#"{"jsonrpc":"2.0","id":"#.utf8) + (try DirectRequests.encoder.encode(id)) + Data(#","result":"#.utf8)
                + Data(result.utf8) + Data("}".utf8)
            #expect(bytes == expected, "\(id)")
        }
    }

    /// Without an answer of code-api kept (no call went through `APICallMiddleware`), the value is encoded.
    @Test func aValueWithNoAPIAnswerKeptIsEncoded() async throws {
        let answer = try await ToolAnswer.passingOn { ["replicas": 2] }
        #expect(answer.json == Data(#"{"replicas":2}"#.utf8))
        #expect(answer.isError == false)
    }

    /// Server-sent events: each line of the data is a `data:` line of its own (LF, CR LF and CR end lines).
    @Test func anEventsDataLinesAreItsLines() {
        #expect(
            String(decoding: SSE.message(Data(#"{"a":1}"#.utf8), id: "7"), as: UTF8.self) == "id: 7\nevent: message\ndata: {\"a\":1}\n\n")
        #expect(
            String(decoding: SSE.message(Data("a\nb\r\nc\rd\n".utf8), id: "8"), as: UTF8.self)
                == "id: 8\nevent: message\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \n\n")
    }

    @Test func bytesAreFoundAnywhereAndOnlyWhole() {
        for (text, found) in [
            ("null", true), (#"{"a":null}"#, true), ("nnull", true), ("xnul", false), ("nul", false), ("", false), ("n u l l", false),
        ] {
            #expect(Data(text.utf8).containsBytes(of: "null") == found, "\(text)")
        }
        #expect(Data().hasLineBreak == false)
        #expect(Data("a\rb".utf8).hasLineBreak && Data("\n".utf8).hasLineBreak && !Data("ab".utf8).hasLineBreak)
    }

    @Test func anAPIProblemIsAnErrorResultCarryingTheProblem() throws {
        let answer = try ToolAnswer.failure(APIFailure(status: nil, problem: nil, reason: "connection refused"))
        let bytes = try DirectRequests.response(id: .number(1), result: answer.resultJSON())
        let result = try JSONDecoder().decode(Response<CallTool>.self, from: bytes).result.get()
        #expect(result.isError == true)
        #expect(result.structuredContent == .object(["code": .string("api_unavailable"), "detail": .string("connection refused")]))
    }

    /// A request whose params do not decode (no tool name) is -32602 with the request's own id.
    @Test func invalidParamsAreAnsweredWithTheRequestsID() async throws {
        let requests = DirectRequests { _, _ in
            Issue.record("the handler must not run")
            return try ToolAnswer.value(["never": true])
        }
        let body = Data(#"{"jsonrpc":"2.0","id":"x-9","method":"tools/call","params":{"arguments":{}}}"#.utf8)
        let http = MCP.HTTPRequest(method: "POST", headers: [:], body: body)
        let bytes = try #require(await requests.answer(body, http: http))
        let response = try JSONDecoder().decode(Response<CallTool>.self, from: bytes)
        #expect(response.id == .string("x-9"))
        guard case .failure(let error) = response.result else {
            Issue.record("not an error: \(String(decoding: bytes, as: UTF8.self))")
            return
        }
        #expect(error.code == -32602)
    }

    /// A request the transport's check lets through but that is not strict JSON (a trailing comma) is read as
    /// `JSONDecoder` reads it, as before: the tool runs and the answer carries the request's id.
    @Test func aRequestWithATrailingCommaIsStillAnswered() async throws {
        let requests = DirectRequests { params, _ in try ToolAnswer.value(["tool": params.name]) }
        let body = Data(#"{"jsonrpc":"2.0","id":"x-10","method":"tools/call","params":{"name":"echo","arguments":{},},}"#.utf8)
        #expect(throws: DecodingError.self) { try ContractJSONDecoder().decode(Request<CallTool>.self, from: body) }
        let http = MCP.HTTPRequest(method: "POST", headers: [:], body: body)
        let bytes = try #require(await requests.answer(body, http: http))
        let response = try JSONDecoder().decode(Response<CallTool>.self, from: bytes)
        #expect(response.id == .string("x-10"))
        guard case .success(let result) = response.result else {
            Issue.record("not a result: \(String(decoding: bytes, as: UTF8.self))")
            return
        }
        #expect(result.isError != true)
    }
}
