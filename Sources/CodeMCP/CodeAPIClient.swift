import AsyncHTTPClient
import CodeAPIContract
import CodeRuntime
import Foundation
import HTTPTypes
import NIOCore
import OpenAPIAsyncHTTPClient
import OpenAPIRuntime
import Synchronization

/// code-api as code-mcp calls it: the client generated from openapi/openapi.yaml over async-http-client,
/// sending code-mcp's operator key, its User-Agent, the MCP client's label (`X-Code-Client`) and the id
/// of the MCP request that caused the call.
/// Any answer but a 2xx becomes an `APIFailure` (`APICallMiddleware`), so callers read the success case.
func makeCodeAPIClient(settings: MCPSettings, httpClient: HTTPClient) -> Client {
    Client(
        serverURL: settings.apiURL,
        configuration: .contract,
        transport: AsyncHTTPClientTransport(configuration: .init(client: httpClient, timeout: TimeAmount(settings.apiTimeout))),
        middlewares: [APICallMiddleware(apiKey: settings.apiKey, apiURL: settings.apiURL)]
    )
}

/// A problem answer of code-api, or a failure to reach it; tools turn it into an `isError` result.
struct APIFailure: Error, Sendable, CustomStringConvertible {
    let status: Int?
    let problem: Components.Schemas.Problem?
    let reason: String

    var description: String {
        if let problem { return "\(problem.status) \(problem.code): \(problem.detail ?? problem.title)" }
        return reason
    }
}

/// The id of the MCP request a tool call serves, passed on to code-api as `X-Request-ID`.
enum APIRequestID {
    @TaskLocal static var current: String?
}

/// The body of code-api's successful answer, kept for a tool that answers with it as it came
/// (`ToolAnswer.passingOn`): encoding the value the generated client decoded from it would make the same
/// JSON again (a quarter of code-mcp's CPU for a list of 20, docs/performance.md).
final class APIAnswerBody: Sendable {
    private let bodies = Mutex<(last: Data?, count: Int)>((nil, 0))

    /// The body of the successful answer received while this was `APICallMiddleware.answerBody`, when there
    /// was exactly one: with more, nothing says which of them the tool's value came from.
    var json: Data? { bodies.withLock { $0.count == 1 ? $0.last : nil } }

    fileprivate func keep(_ json: Data) { bodies.withLock { $0 = (json, $0.count + 1) } }
}

/// Authenticates every call, names the caller, passes the request id on, bounds what an answer may
/// make code-mcp hold, and turns every answer but a 2xx into an `APIFailure` with the problem body.
struct APICallMiddleware: ClientMiddleware {
    let apiKey: String
    let apiURL: URL

    /// Where a successful answer's body is kept, when a tool asks for it.
    @TaskLocal static var answerBody: APIAnswerBody?

    static let maximumResponseBytes = 8 * 1024 * 1024
    static let userAgent = "code-mcp/\(BuildInfo.version)"

    func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        baseURL: URL,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(apiKey)"
        request.headerFields[.userAgent] = Self.userAgent
        if let requestID = APIRequestID.current { request.headerFields[.xRequestID] = requestID }
        if let client = MCPClientIdentity.current {
            request.headerFields[.codeClient] = client.label
            // Keys are each client's own: two agents choosing the same key must not get each other's
            // deployment. The generated client percent-encodes header values; the key is namespaced
            // decoded, and sent as it is (the contract allows any visible ASCII).
            if let key = request.headerFields[.idempotencyKey] {
                request.headerFields[.idempotencyKey] = client.namespaced(idempotencyKey: key.removingPercentEncoding ?? key)
            }
        }
        let response: HTTPResponse
        let bytes: Data
        do {
            let (answer, answerBody) = try await next(request, body, baseURL)
            response = answer
            if let answerBody {
                bytes = try await Data(collecting: answerBody, upTo: Self.maximumResponseBytes)
            } else {
                bytes = Data()
            }
        } catch {
            throw APIFailure(status: nil, problem: nil, reason: "code-api at \(apiURL.absoluteString) did not answer: \(error)")
        }
        guard response.status.kind == .successful else {
            let problem = try? JSONDecoder().decode(Components.Schemas.Problem.self, from: bytes)
            throw APIFailure(status: response.status.code, problem: problem, reason: "code-api answered HTTP \(response.status.code)")
        }
        Self.answerBody?.keep(bytes)
        return (response, HTTPBody(bytes))
    }
}
