import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CodeMCP

@Suite("Tool answers passed on")
struct ToolAnswerPassingOnTests {
    /// A list is passed on as code-api sent it: through the generated client and its middleware over HTTP
    /// on loopback, from a server whose JSON (spaced out) re-encoding the decoded page would not give.
    @Test func aListIsPassedOnAsCodeAPISentIt() async throws {
        let sent = #"{ "items" : [ ], "next_cursor" : "k2" }"#
        let router = Router()
        router.get("/v1/deployments") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: sent)))
        }
        try await Application(router: router).test(.live) { client in
            let port = try #require(client.port)
            let settings = MCPSettings(
                apiURL: try #require(URL(string: "http://127.0.0.1:\(port)")), workerURL: try #require(URL(string: "http://127.0.0.1:1")),
                apiKey: "code_test", authTokens: ["token"])
            let api = makeCodeAPIClient(settings: settings, httpClient: .shared)
            let answer = try await ToolAnswer.passingOn { try await api.listDeployments(query: .init(limit: 20)).ok.body.json }
            #expect(String(decoding: answer.json, as: UTF8.self) == sent)
            #expect(answer.isError == false)
        }
    }
}
