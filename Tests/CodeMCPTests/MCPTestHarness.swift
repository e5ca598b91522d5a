import AsyncHTTPClient
import CodeAPI
import CodeDomain
import CodeMCP
import CodeRuntime
import CodeStore
import CodeTestSupport
import CodeWorker
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// code-api and code-worker running on loopback ports, with the keys code-mcp needs.
struct LiveStack: Sendable {
    let apiURL: URL
    let workerURL: URL
    let adminKey: String
    let mcpKey: String
    let token = "mcp-test-token-" + UUID().uuidString

    func mcpSettings(_ configure: (inout MCPSettings) -> Void = { _ in }) -> MCPSettings {
        var settings = MCPSettings(
            apiURL: apiURL, workerURL: workerURL, apiKey: mcpKey, authTokens: [token], waitTimeout: .seconds(30),
            waitPollInterval: .milliseconds(50))
        configure(&settings)
        return settings
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "mcp-test")
    logger.logLevel = .critical
    return logger
}

/// Runs code-api and code-worker (simulated driver, `step` per replica) on a SQLite file for `body`.
func withLiveStack(step: Duration = .milliseconds(10), _ body: @escaping @Sendable (LiveStack) async throws -> Void) async throws {
    try await TestDatabase.with(.sqlite) { database in
        let location = try DatabaseLocation(url: database.url)
        let adminKey = APIKeySecret.generate()
        let mcpKey = APIKeySecret.generate()
        let apiPort = freePort()
        let workerPort = freePort()
        let apiRuntime = ServiceRuntime(
            name: "code-api", settings: RuntimeSettings(host: "127.0.0.1", port: apiPort), logger: quietLogger())
        let api = try await CodeAPI.buildApplication(
            settings: APISettings(database: location, adminKey: adminKey, mcpKey: mcpKey), runtime: apiRuntime)
        let workerRuntime = ServiceRuntime(
            name: "code-worker", settings: RuntimeSettings(host: "127.0.0.1", port: workerPort), logger: quietLogger())
        let worker = try await CodeWorker.buildApplication(
            settings: WorkerSettings(
                database: location, workerID: "mcp-test-worker", rollout: .simulated(step: step), maximumPollInterval: .milliseconds(50)),
            runtime: workerRuntime
        )
        let apiGroup = apiRuntime.makeServiceGroup(api)
        let workerGroup = workerRuntime.makeServiceGroup(worker)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await apiGroup.run() }
            _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(apiPort)/health/ready")
            group.addTask { try await workerGroup.run() }
            _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(workerPort)/health/ready")
            do {
                try await body(
                    LiveStack(
                        apiURL: URL(string: "http://127.0.0.1:\(apiPort)")!, workerURL: URL(string: "http://127.0.0.1:\(workerPort)")!,
                        adminKey: adminKey, mcpKey: mcpKey
                    ))
            } catch {
                await workerGroup.triggerGracefulShutdown()
                await apiGroup.triggerGracefulShutdown()
                throw error
            }
            await workerGroup.triggerGracefulShutdown()
            await apiGroup.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}

/// Runs code-mcp with `settings` on a loopback port and gives `body` its base URL.
func withMCP(_ settings: MCPSettings, _ body: @escaping @Sendable (String, ServiceRuntime) async throws -> Void) async throws {
    let runtime = ServiceRuntime(name: "code-mcp", settings: RuntimeSettings(host: "127.0.0.1", port: 0), logger: quietLogger())
    let app = try await CodeMCP.buildApplication(settings: settings, runtime: runtime)
    try await app.test(.live) { client in
        try await body("http://127.0.0.1:\(client.port!)/mcp", runtime)
    }
}

/// A minimal Streamable HTTP client over real HTTP: JSON-RPC in, server-sent events out.
struct RawMCPClient: Sendable {
    let url: String
    let token: String?
    var sessionID: String?
    var extraHeaders: [(String, String)] = []

    struct Reply: Sendable {
        let status: Int
        let headers: HTTPHeaders
        /// JSON-RPC messages from the SSE body (or the JSON body of an error).
        let messages: [[String: any Sendable]]
        let text: String

        /// The response to request `id`.
        func response(_ id: Int) -> [String: any Sendable]? {
            messages.first { ($0["id"] as? Int) == id }
        }

        func result(_ id: Int) -> [String: any Sendable]? {
            response(id)?["result"] as? [String: any Sendable]
        }
    }

    func post(_ message: [String: Any], headers: [(String, String)] = []) async throws -> Reply {
        try await send(.POST, body: try JSONSerialization.data(withJSONObject: message), headers: headers)
    }

    func send(_ method: HTTPMethod, body: Data? = nil, headers: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json, text/event-stream")
        if body != nil { request.headers.add(name: "Content-Type", value: "application/json") }
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let sessionID {
            request.headers.add(name: "Mcp-Session-Id", value: sessionID)
            request.headers.add(name: "MCP-Protocol-Version", value: "2025-11-25")
        }
        for (name, value) in extraHeaders + headers { request.headers.replaceOrAdd(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let data = Data(buffer: try await response.body.collect(upTo: 16 << 20))
        let text = String(decoding: data, as: UTF8.self)
        var messages: [[String: any Sendable]] = []
        if response.headers["Content-Type"].first?.hasPrefix("text/event-stream") == true {
            for line in text.split(separator: "\n") where line.hasPrefix("data:") {
                let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
                if let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: any Sendable] {
                    messages.append(object)
                }
            }
        } else if let object = try? JSONSerialization.jsonObject(with: data) as? [String: any Sendable] {
            messages.append(object)
        }
        return Reply(status: Int(response.status.code), headers: response.headers, messages: messages, text: text)
    }

    /// `initialize` then `notifications/initialized`; returns the client with its session.
    func initialized() async throws -> RawMCPClient {
        let reply = try await post([
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": [
                "protocolVersion": "2025-11-25", "capabilities": [:] as [String: Any],
                "clientInfo": ["name": "swift-test", "version": "1"],
            ],
        ])
        guard reply.status == 200, let session = reply.headers["Mcp-Session-Id"].first else {
            throw UnexpectedBody(text: "initialize answered \(reply.status): \(reply.text)")
        }
        var client = self
        client.sessionID = session
        let notified = try await client.post(["jsonrpc": "2.0", "method": "notifications/initialized"])
        guard notified.status == 202 else { throw UnexpectedBody(text: "initialized answered \(notified.status)") }
        return client
    }

    func call(_ id: Int, _ method: String, _ params: [String: Any] = [:]) async throws -> Reply {
        try await post(["jsonrpc": "2.0", "id": id, "method": method, "params": params])
    }

    /// `tools/call`, returning the result object.
    func tool(_ id: Int, _ name: String, _ arguments: [String: Any] = [:]) async throws -> [String: any Sendable] {
        let reply = try await call(id, "tools/call", ["name": name, "arguments": arguments])
        guard let result = reply.result(id) else { throw UnexpectedBody(text: "tools/call \(name): \(reply.text)") }
        return result
    }
}

/// A loopback HTTP proxy in front of the real code-api that records the headers of every request it
/// forwards, so a test sees what code-mcp sent.
struct RecordingProxy: HTTPResponder {
    typealias Context = BasicRequestContext
    let target: URL
    let seen = NIOLockedValueBox<[HTTPFields]>([])

    /// Hop-by-hop and framing headers the proxy sets itself.
    static let notForwarded: Set<String> = ["host", "connection", "transfer-encoding", "content-length", "keep-alive"]

    func respond(to request: Request, context: Context) async throws -> Response {
        seen.withLockedValue { $0.append(request.headers) }
        var forwarded = HTTPClientRequest(url: target.absoluteString + request.uri.description)
        forwarded.method = NIOHTTP1.HTTPMethod(rawValue: request.method.rawValue)
        for field in request.headers where !Self.notForwarded.contains(field.name.canonicalName) {
            forwarded.headers.add(name: field.name.rawName, value: field.value)
        }
        forwarded.body = .bytes(try await request.body.collect(upTo: 1 << 20))
        let answer = try await HTTPClient.shared.execute(forwarded, timeout: .seconds(30))
        var headers = HTTPFields()
        for header in answer.headers where !Self.notForwarded.contains(header.name.lowercased()) {
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        let body = try await answer.body.collect(upTo: 16 << 20)
        return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: .init(byteBuffer: body))
    }

    /// The values of header `name` in the requests seen so far.
    func values(of name: String) -> [String] {
        let field = HTTPField.Name(name)!
        return seen.withLockedValue { $0.compactMap { $0[field] } }
    }
}

/// Runs a `RecordingProxy` to `target` on a loopback port for `body`.
func withRecordingProxy(to target: URL, _ body: @escaping @Sendable (URL, RecordingProxy) async throws -> Void) async throws {
    let proxy = RecordingProxy(target: target)
    let app = Application(responder: proxy, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: quietLogger())
    try await app.test(.live) { client in
        try await body(URL(string: "http://127.0.0.1:\(client.port!)")!, proxy)
    }
}

extension RawMCPClient.Reply {
    /// The SSE event ids of the reply, in order.
    var eventIDs: [String] {
        text.split(separator: "\n").filter { $0.hasPrefix("id:") }.map { $0.dropFirst(3).trimmingCharacters(in: .whitespaces) }
    }

    /// The JSON-RPC error code of an error reply.
    var errorCode: Int? {
        (messages.first?["error"] as? [String: any Sendable])?["code"] as? Int
    }
}

extension RawMCPClient {
    /// Resumes a stream with `Last-Event-ID`; returns the status, and the body when the stream ends within
    /// `timeout` (a stream that is resumed stays open while its request is unanswered).
    func resume(after eventID: String, timeout: Duration = .seconds(5)) async throws -> (status: Int, text: String?) {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let sessionID {
            request.headers.add(name: "Mcp-Session-Id", value: sessionID)
            request.headers.add(name: "MCP-Protocol-Version", value: "2025-11-25")
        }
        request.headers.add(name: "Last-Event-ID", value: eventID)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let status = Int(response.status.code)
        let body = try? await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask { String(decoding: Data(buffer: try await response.body.collect(upTo: 16 << 20)), as: UTF8.self) }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        return (status, body ?? nil)
    }
}
