import AsyncHTTPClient
import CodeRuntime
import Foundation
import Hummingbird
import HummingbirdTesting
import MCP
import Testing

@testable import CodeMCP

/// `list_deployments` and `get_manifests` answer with code-api's JSON as it came (`ToolAnswer.passingOn`),
/// through the tools' handlers, the generated client and its middleware, over HTTP on loopback, from a
/// server whose answers re-encoding the decoded value would not reproduce (spaced out).
@Suite("Tool answers passed on")
struct ToolAnswerPassingOnTests {
    static let manifests =
        #"{ "deployment_id" : "dep_1", "attempt" : 1, "rendered_at" : "2026-12-05T04:00:00.000Z", "compose" : "services: {}", "kubernetes" : "kind: Deployment" }"#

    /// Runs `body` with the tools' handlers against a code-api that answers a list with `list`.
    func withHandlers(list: String, _ body: @Sendable (MCPHandlers) async throws -> Void) async throws {
        let router = Router()
        router.get("/v1/deployments") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: list)))
        }
        router.get("/v1/deployments/{id}/manifests") { _, context in
            guard context.parameters.get("id") == "dep_1" else {
                return Response(
                    status: .notFound, headers: [.contentType: "application/problem+json"],
                    body: .init(
                        byteBuffer: ByteBuffer(string: #"{"type":"about:blank","title":"Not Found","status":404,"code":"not_found"}"#)))
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: Self.manifests)))
        }
        try await Application(router: router).test(.live) { client in
            let port = try #require(client.port)
            let settings = MCPSettings(
                apiURL: try #require(URL(string: "http://127.0.0.1:\(port)")), workerURL: try #require(URL(string: "http://127.0.0.1:1")),
                apiKey: "code_test", authTokens: ["token"])
            try await body(
                MCPHandlers(
                    api: makeCodeAPIClient(settings: settings, httpClient: .shared), catalog: try ToolCatalog(contract: .bundled()),
                    settings: settings, health: HealthChecks(service: "code-mcp"), probeClient: .shared))
        }
    }

    func call(_ handlers: MCPHandlers, _ tool: String, _ arguments: [String: Value]) async throws -> ToolAnswer {
        try await handlers.call(tool, arguments: arguments, requestID: nil, reporter: .init(notify: { _, _ in }, log: { _, _ in }))
    }

    @Test func listsAndManifestsArePassedOnAsCodeAPISentThem() async throws {
        let list = #"{ "items" : [ ], "next_cursor" : "k2" }"#
        try await withHandlers(list: list) { handlers in
            let listed = try await call(handlers, "list_deployments", ["limit": .int(20)])
            #expect(String(decoding: listed.json, as: UTF8.self) == list)
            #expect(listed.isError == false)
            let manifests = try await call(handlers, "get_manifests", ["id": .string("dep_1")])
            #expect(String(decoding: manifests.json, as: UTF8.self) == Self.manifests)
            // An API problem is still the problem, as an error result.
            let missing = try await call(handlers, "get_manifests", ["id": .string("dep_2")])
            #expect(missing.isError)
            #expect(String(decoding: missing.json, as: UTF8.self).contains(#""code":"not_found""#))
        }
    }

    /// A body with a line break (it would end the event's `data:` line) or a `null` (the output schema
    /// allows none; the decoder reads it as absent) is the decoded value encoded again.
    @Test(arguments: [
        #"{"items":[],"# + "\n" + #""next_cursor":"k2"}"#,
        #"{"items":[],"next_cursor":null}"#,
    ])
    func bodiesNotAsCodeAPIWritesThemAreEncodedAgain(list: String) async throws {
        try await withHandlers(list: list) { handlers in
            let listed = try await call(handlers, "list_deployments", [:])
            let json = String(decoding: listed.json, as: UTF8.self)
            #expect(json != list)
            #expect(!json.contains("\n") && !json.contains("null"))
            #expect(try JSONSerialization.jsonObject(with: listed.json) is [String: Any])
        }
    }

    @Test func twoAPIAnswersPassNeitherOn() async throws {
        try await withHandlers(list: #"{ "items" : [ ] }"#) { handlers in
            let answer = try await ToolAnswer.passingOn {
                _ = try await handlers.api.listDeployments(query: .init()).ok.body.json
                return try await handlers.api.getDeploymentManifests(path: .init(id: "dep_1")).ok.body.json
            }
            #expect(String(decoding: answer.json, as: UTF8.self) != Self.manifests)
            #expect((try JSONSerialization.jsonObject(with: answer.json) as? [String: Any])?["deployment_id"] as? String == "dep_1")
        }
    }
}
