import CodeAPIContract
import Foundation
import MCP

/// Requests a session's transport answers itself, with the session's own handler, instead of passing them
/// to the SDK's `Server`: `tools/call`, the one request clients repeat at volume.
///
/// Why: the SDK's `Server` (swift-sdk 0.12) hands every handler's result back as its `Value`, by encoding
/// the result and decoding it again (`TypedRequestHandler`), and `Value.init(from:)` tests every string
/// for a `data:` URL with a regular expression it compiles anew for each string (`Data.isDataURL`). For a
/// `list_deployments` of 20 that was 57 % of code-mcp's CPU, ~9 ms a call (docs/performance.md). Here the
/// request is decoded as the SDK's `Request<CallTool>` and answered with the tool's JSON written into the
/// JSON-RPC answer (`ToolAnswer.resultJSON`); errors are the SDK's `Response<CallTool>`. A result is what
/// the SDK would send (a test decodes it as `Response<CallTool>`); params that do not decode are -32602
/// Invalid params (the SDK answers -32603 Internal error to those). Everything else
/// (initialize, lists, resources, prompts, notifications) goes through the SDK. When the SDK stops
/// re-decoding results, register the handler with `withMethodHandler` again and delete this.
struct DirectRequests: Sendable {
    typealias ToolCall = @Sendable (_ params: CallTool.Parameters, _ http: MCP.HTTPRequest) async throws -> ToolAnswer

    let methods: Set<String> = [CallTool.name]
    let callTool: ToolCall

    /// The JSON-RPC answer to a request of one of `methods`, or nil when the request was cancelled (the
    /// specification says a cancelled request gets no answer).
    func answer(_ body: Data, http: MCP.HTTPRequest) async -> Data? {
        let request: Request<CallTool>
        do {
            request = try Self.decode(Request<CallTool>.self, from: body)
        } catch {
            // The envelope was a valid JSON-RPC request (the transport checked), so its id decodes.
            let id = (try? Self.decode(RequestID.self, from: body))?.id ?? .random
            return Self.encode(Response<CallTool>(id: id, error: .invalidParams(Self.describe(error))))
        }
        do {
            let answer = try await callTool(request.params, http)
            // Cancelled while code-api answered: the HTTP client's own cancellation error became a result.
            if Task.isCancelled { return nil }
            return try Self.response(id: request.id, result: answer.resultJSON())
        } catch {
            if error is CancellationError || Task.isCancelled { return nil }
            // As the SDK's `Server` answers a handler's error.
            let failure = error as? MCPError ?? .internalError(error.localizedDescription)
            return Self.encode(Response<CallTool>(id: request.id, error: failure))
        }
    }

    private struct RequestID: Decodable {
        let id: ID
    }

    /// `{"jsonrpc":"2.0","id":…,"result":…}` with the result's JSON as it is, copied once into room made for the
    /// whole answer. The id (a JSON string or number) is written by the contract's encoder, byte for byte what
    /// `encoder` writes (tested), without building `JSONEncoder`'s tree for one value.
    static func response(id: ID, result: Data) throws -> Data {
        let head = Array(#"{"jsonrpc":"2.0","id":"#.utf8) + (try ContractJSONEncoder().encode(id)) + Array(#","result":"#.utf8)
        var response = Data(capacity: head.count + result.count + 1)
        response.append(contentsOf: head)
        response.append(result)
        response.append(UInt8(ascii: "}"))
        return response
    }

    /// Reads what `JSONDecoder` reads, with the same kinds of errors, from an index of the message instead of
    /// a dictionary per object (docs/performance.md, twenty-second round).
    static let decoder = ContractJSONDecoder()

    /// `decoder`'s reading of a message; one it refuses as not strict JSON (a trailing comma, a byte order
    /// mark), which the transport's check of the envelope (`JSONSerialization`) lets through, is read by
    /// `JSONDecoder`, as all were before.
    static func decode<T: Decodable>(_ type: T.Type, from body: Data) throws -> T {
        do {
            return try decoder.decode(type, from: body)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            return try JSONDecoder().decode(type, from: body)
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    /// An error answer. Its parts are an id and strings, which always encode.
    private static func encode(_ response: Response<CallTool>) -> Data {
        (try? encoder.encode(response)) ?? Data(#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"Internal error"}}"#.utf8)
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.dataCorrupted(let context):
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default:
            "\(error)"
        }
    }
}
