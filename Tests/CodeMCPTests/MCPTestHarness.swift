import AsyncHTTPClient
import CodeAPI
import CodeDomain
import CodeMCP
import CodeRuntime
import CodeStore
import CodeTestSupport
import CodeWorker
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
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
