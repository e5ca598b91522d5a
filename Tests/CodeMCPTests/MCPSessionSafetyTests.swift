import CodeTestSupport
import Crypto
import Foundation
import Testing

@testable import CodeMCP

/// Issue 12: what a session keeps, who may use it, how clients are told apart at code-api, and the
/// protocol's edges (invalid messages, error codes, request ids).
@Suite("MCP session safety", .serialized)
struct MCPSessionSafetyTests {
    static var initialize: [String: Any] {
        [
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": [
                "protocolVersion": "2025-11-25", "capabilities": [:] as [String: Any],
                "clientInfo": ["name": "swift-test", "version": "1"],
            ],
        ]
    }

    static func label(_ token: String) -> String {
        "mcp:" + SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined().prefix(12)
    }

    // MARK: Defect 6: what a session retains

    /// Every answer used to stay in the session for replay until it ended: the first answer of a long
    /// session could still be replayed after hundreds of calls. Now only the most recent answers are kept.
    @Test func replayRetentionIsBoundedAfterManyCalls() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                let first = try await client.call(1, "tools/list")
                let firstEvent = try #require(first.eventIDs.first, "\(first.text)")
                var last = first
                let calls = 120
                #expect(first.text.utf8.count * calls > 2 * MCPSettings.Defaults.sessionReplayBytes, "enough to exceed the bound")
                for id in 2...calls {
                    last = try await client.call(id, "tools/list")
                    #expect(last.result(id) != nil)
                }
                // tools/list answers are ~10 KB: 120 of them are beyond the bound, so the first is gone...
                #expect(try await client.resume(after: firstEvent).status == 400, "the first answer is no longer kept")
                // ...and the latest one can still be resumed, and its stream ends with it.
                let lastEvent = try #require(last.eventIDs.first)
                let resumed = try await client.resume(after: lastEvent)
                #expect(resumed.status == 200)
                #expect(resumed.text?.contains(#""id":\#(calls)"#) == true, "the latest answer is replayed: \(resumed.text ?? "no end")")
                _ = try await client.send(.DELETE)
            }
        }
    }

    // MARK: Defect 7: sessions belong to their token; clients are told apart at code-api

    @Test func aSessionAnswersOnlyTheTokenThatOpenedIt() async throws {
        try await withLiveStack { stack in
            let other = "mcp-other-token-" + UUID().uuidString
            try await withMCP(stack.mcpSettings { $0.authTokens = [stack.token, other] }) { url, _ in
                let owner = try await RawMCPClient(url: url, token: stack.token).initialized()
                var intruder = owner
                intruder = RawMCPClient(url: url, token: other, sessionID: owner.sessionID)
                let stolen = try await intruder.call(1, "tools/list")
                #expect(stolen.status == 404, "as if the session did not exist: \(stolen.text)")
                #expect(stolen.result(1) == nil)
                #expect(try await intruder.send(.DELETE).status == 404, "nor can it end it")
                #expect(try await owner.call(2, "tools/list").status == 200, "the owner's session is untouched")
            }
        }
    }

    @Test func idempotencyKeysAndClientLabelsAreNamespacedPerToken() async throws {
        try await withLiveStack { stack in
            let other = "mcp-other-token-" + UUID().uuidString
            try await withRecordingProxy(to: stack.apiURL) { proxyURL, proxy in
                try await withMCP(
                    stack.mcpSettings {
                        $0.authTokens = [stack.token, other]
                        $0.apiURL = proxyURL
                    }
                ) { url, _ in
                    let first = try await RawMCPClient(url: url, token: stack.token).initialized()
                    let second = try await RawMCPClient(url: url, token: other).initialized()
                    func create(_ client: RawMCPClient, _ id: Int, image: String, key: String) async throws -> [String: any Sendable] {
                        try await client.tool(
                            id, "create_deployment",
                            ["service": "web", "image": image, "environment": "development", "idempotency_key": key])
                    }
                    func deploymentID(_ result: [String: any Sendable]) -> String? {
                        ((result["structuredContent"] as? [String: any Sendable])?["deployment"] as? [String: any Sendable])?["id"]
                            as? String
                    }
                    // Two agents that happen to choose the same key do not collide...
                    let mine = try await create(first, 1, image: "ghcr.io/acme/web:1.0", key: "deploy-web")
                    let theirs = try await create(second, 1, image: "ghcr.io/acme/web:2.0", key: "deploy-web")
                    #expect(mine["isError"] as? Bool == false, "\(mine)")
                    #expect(theirs["isError"] as? Bool == false, "another token's key is its own: \(theirs)")
                    #expect(deploymentID(mine) != nil && deploymentID(mine) != deploymentID(theirs))
                    // ...while one agent repeating its request gets its deployment back.
                    let again = try await create(first, 2, image: "ghcr.io/acme/web:1.0", key: "deploy-web")
                    #expect(deploymentID(again) == deploymentID(mine))
                    // The longest key the tool accepts still fits the API's limit once namespaced.
                    let long = String(repeating: "k", count: 255)
                    let longResult = try await create(first, 3, image: "ghcr.io/acme/web:3.0", key: long)
                    #expect(longResult["isError"] as? Bool == false, "\(longResult)")

                    let keys = proxy.values(of: "Idempotency-Key")
                    #expect(keys.count == 4)
                    #expect(keys.allSatisfy { (1...255).contains($0.count) && $0.utf8.allSatisfy { (0x21...0x7E).contains($0) } })
                    #expect(
                        keys.prefix(3).map { $0 } == [
                            Self.label(stack.token) + ":deploy-web", Self.label(other) + ":deploy-web",
                            Self.label(stack.token) + ":deploy-web",
                        ])
                    // Every call to code-api names the token's client.
                    let labels = proxy.values(of: "X-Code-Client")
                    #expect(labels.count == proxy.seen.withLockedValue { $0.count } && !labels.isEmpty)
                    #expect(Set(labels) == [Self.label(stack.token), Self.label(other)])
                }
            }
        }
    }

    // MARK: Defect 8: protocol edges

    @Test func anInvalidInitializeOpensNoSession() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, runtime in
                let client = RawMCPClient(url: url, token: stack.token)
                var withoutVersion = Self.initialize
                withoutVersion.removeValue(forKey: "jsonrpc")
                var wrongVersion = Self.initialize
                wrongVersion["jsonrpc"] = "1.0"
                var objectID = Self.initialize
                objectID["id"] = ["not": "an id"]
                for message in [withoutVersion, wrongVersion, objectID] {
                    let reply = try await client.post(message)
                    #expect(reply.status == 400, "\(message): \(reply.text)")
                    #expect(reply.errorCode == -32600, "Invalid Request: \(reply.text)")
                    #expect(reply.headers["Mcp-Session-Id"].isEmpty)
                }
                let batch = try await client.send(.POST, body: try JSONSerialization.data(withJSONObject: [Self.initialize]))
                #expect(batch.status == 400 && batch.errorCode == -32600, "\(batch.text)")
                let metrics = String(decoding: runtime.metrics.exposition(), as: UTF8.self)
                #expect(!metrics.contains("code_mcp_sessions_open 1"), "no session was opened: \(metrics)")
                // A valid initialize still works.
                _ = try await client.initialized()
            }
        }
    }

    @Test func unparsableBodiesAreParseErrorsAndNonMessagesInvalidRequests() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                let anonymous = RawMCPClient(url: url, token: stack.token)
                let session = try await anonymous.initialized()
                for client in [anonymous, session] {
                    let garbage = try await client.send(.POST, body: Data("{not json".utf8))
                    #expect(garbage.status == 400, "\(garbage.text)")
                    #expect(garbage.errorCode == -32700, "Parse error (session: \(client.sessionID != nil)): \(garbage.text)")
                }
                for body in [#"{"jsonrpc":"2.0"}"#, #"{"jsonrpc":"2.0","id":1}"#, #"{"id":1,"method":"tools/list"}"#, "[]", "42"] {
                    let reply = try await session.send(.POST, body: Data(body.utf8))
                    #expect(reply.status == 400, "\(body): \(reply.text)")
                    #expect(reply.errorCode == -32600, "Invalid Request for \(body): \(reply.text)")
                }
                #expect(try await session.call(9, "tools/list").status == 200, "the session still works")
            }
        }
    }

    /// The request id a tool call passes to code-api is the one code-mcp's runtime accepted (and echoed),
    /// never the raw header.
    @Test func theSanitisedRequestIDReachesTheAPI() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings()) { url, _ in
                let session = try await RawMCPClient(url: url, token: stack.token).initialized()
                let unacceptable = ["has spaces in it", String(repeating: "a", count: 200), "semi;colon", "quote\"d", "trace-ok, second"]
                for (index, raw) in unacceptable.enumerated() {
                    let reply = try await session.post(
                        [
                            "jsonrpc": "2.0", "id": index + 1, "method": "tools/call",
                            "params": [
                                "name": "create_deployment",
                                "arguments": [
                                    "service": "traced-\(index)", "image": "ghcr.io/acme/traced:1.0", "environment": "development",
                                ],
                            ],
                        ], headers: [("X-Request-ID", raw)])
                    let echoed = try #require(reply.headers["X-Request-ID"].first)
                    #expect(echoed != raw)
                    let audit = try await LoopbackHTTP.request(
                        .GET, stack.apiURL.absoluteString + "/v1/audit?limit=100", headers: [("Authorization", "Bearer \(stack.adminKey)")])
                    let entries = try #require(try audit.json()["items"] as? [[String: Any]])
                    let created = entries.filter { $0["action"] as? String == "deployment.create" }
                    #expect(created.count == index + 1)
                    #expect(
                        created.contains { $0["request_id"] as? String == echoed },
                        "code-api saw the request id code-mcp echoed (\(echoed)) for \(raw.prefix(20)): \(created.map { $0["request_id"] ?? "" })"
                    )
                }
            }
        }
    }
}
