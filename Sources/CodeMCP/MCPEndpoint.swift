import CodeRuntime
import Foundation
import HTTPTypes
import Hummingbird
import MCP
import NIOCore
import ServiceLifecycle

/// `/mcp` (POST, GET, DELETE): Host and Origin allowlists, bearer tokens, then the session's transport.
///
/// The SDK's default validation only accepts a localhost `Host`, which inside a container answers 421 to
/// every client; the allowlists come from configuration instead. A disallowed `Origin` is 403, as the
/// specification requires; a request without `Origin` (not from a browser) is allowed.
struct MCPEndpoint: Sendable {
    let settings: MCPSettings
    let sessions: SessionManager
    let originValidator: OriginValidator
    let tokens: BearerTokens

    /// JSON-RPC messages are small; this bounds what one POST can make the server buffer.
    static let maximumBodyBytes = 1024 * 1024
    /// The one spelling of the request id a session's handlers read.
    static let requestIDHeader = "X-Request-ID"

    init(settings: MCPSettings, sessions: SessionManager) {
        self.settings = settings
        self.sessions = sessions
        // `host` allows any port (and no port); `host:port` only that one.
        let hosts = settings.allowedHosts.flatMap { entry -> [String] in
            Self.hasPort(entry) ? [entry] : [entry, "\(entry):*"]
        }
        originValidator = OriginValidator(allowedHosts: hosts, allowedOrigins: settings.allowedOrigins)
        tokens = BearerTokens(settings.authTokens)
    }

    static func hasPort(_ host: String) -> Bool {
        // "[::1]:3000" and "example.com:3000" have a port; "[::1]" and "example.com" do not.
        guard let colon = host.lastIndex(of: ":") else { return false }
        return !host[host.index(after: colon)...].contains("]")
    }

    func add<Context: Hummingbird.RequestContext>(to router: Router<Context>) {
        router.post("/mcp") { request, context in try await self.handle(request, context: context) }
        router.get("/mcp") { request, context in try await self.handle(request, context: context) }
        router.delete("/mcp") { request, context in try await self.handle(request, context: context) }
    }

    func handle<Context: Hummingbird.RequestContext>(_ request: Request, context: Context) async throws -> Response {
        var headers: [String: String] = [:]
        // The client's X-Request-ID stays out: handlers get the id the runtime's middleware accepted or
        // generated (and echoed), never the raw header.
        for field in request.headers where field.name != .xRequestID {
            headers[field.name.canonicalName] = headers[field.name.canonicalName].map { "\($0), \(field.value)" } ?? field.value
        }
        // HTTP/1.1's Host header is the authority in HTTPTypes.
        if let authority = request.head.authority { headers[HTTPHeaderName.host] = authority }
        if let requestID = RequestScope.current?.requestID ?? context.requestID { headers[Self.requestIDHeader] = requestID }
        // The session's handlers run in the session's task, not this request's: the request's span goes with
        // the message, in place of the client's (which is this span's parent).
        headers[TraceParent.headerName] = TraceParent.current()

        let probe = MCP.HTTPRequest(method: request.method.rawValue, headers: headers, body: nil, path: request.uri.path)
        if let refusal = originValidator.validate(probe, context: HTTPValidationContext(httpMethod: request.method.rawValue)) {
            return Self.response(refusal)
        }
        guard let client = MCPClientIdentity(authorization: request.headers[.authorization]),
            tokens.accepts(tokenDigest: client.tokenDigest)
        else {
            throw ServiceError.unauthorized("Send an MCP token as 'Authorization: Bearer <token>'.")
        }

        var body: Data?
        if request.method == .post {
            do {
                body = Data(buffer: try await request.body.collect(upTo: Self.maximumBodyBytes))
            } catch is NIOTooManyBytesError {
                throw ServiceError(
                    .contentTooLarge, code: "payload_too_large", detail: "An MCP message may have at most \(Self.maximumBodyBytes) bytes.")
            }
        }
        let mcpRequest = MCP.HTTPRequest(method: request.method.rawValue, headers: headers, body: body, path: request.uri.path)
        return Self.response(await sessions.handle(mcpRequest, client: client))
    }

    static func response(_ response: MCP.HTTPResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let name = HTTPField.Name(name) { fields[name] = value }
        }
        let status = HTTPResponse.Status(code: response.statusCode)
        switch response {
        case .stream(let stream, _):
            // Server-sent events end when the session ends, or at shutdown so that draining does not wait
            // for clients that keep their streams open.
            let events = stream.cancelOnGracefulShutdown().map { ByteBuffer(bytes: $0) }
            return Response(status: status, headers: fields, body: ResponseBody(asyncSequence: events))
        default:
            return Response(
                status: status, headers: fields,
                body: response.bodyData.map { ResponseBody(byteBuffer: ByteBuffer(bytes: $0)) } ?? ResponseBody())
        }
    }
}
