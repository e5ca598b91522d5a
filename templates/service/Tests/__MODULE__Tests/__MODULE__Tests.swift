import CodeRuntime
import CodeTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

@testable import __MODULE__

/// __NAME__ through its `buildApplication` (the router, and real HTTP on loopback) and as a process.
@Suite("__NAME__")
struct __MODULE__Tests {
    static let token = "test-token-0123456789abcdef"

    static func makeApplication() async throws -> (some ApplicationProtocol, ServiceRuntime) {
        let runtime = ServiceRuntime(name: "__NAME__", settings: RuntimeSettings(host: "127.0.0.1", port: 0))
        let app = try await buildApplication(settings: __STEM__Settings(authTokens: [token]), runtime: runtime)
        return (app, runtime)
    }

    static func problem(_ response: TestResponse) throws -> ProblemDetails {
        #expect(response.headers[.contentType] == ProblemDetails.mediaType)
        return try JSONDecoder().decode(ProblemDetails.self, from: Data(buffer: response.body))
    }

    @Test func healthLivenessAndReadinessAnswerWithoutAToken() async throws {
        let (app, _) = try await Self.makeApplication()
        try await app.test(.router) { client in
            for path in ["/health", "/health/live", "/health/ready"] {
                let response = try await client.call(.get, path)
                #expect(response.status == .ok, "\(path)")
                #expect(try response.object()["service"] as? String == "__NAME__")
            }
        }
    }

    @Test func greetingAnswers201() async throws {
        let (app, _) = try await Self.makeApplication()
        try await app.test(.router) { client in
            let response = try await client.call(.post, "/v1/greetings", key: Self.token, json: ["name": "Ada"])
            #expect(response.status == .created)
            #expect(try response.object()["message"] as? String == "Hello, Ada!")
            #expect(response.headers[.xRequestID] != nil, "the runtime assigns a request id")
        }
    }

    @Test func errorsAreProblemsWithStableCodes() async throws {
        let (app, _) = try await Self.makeApplication()
        try await app.test(.router) { client in
            let anonymous = try await client.call(.post, "/v1/greetings", json: ["name": "Ada"])
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.headers[.wwwAuthenticate] == "Bearer")
            #expect(try Self.problem(anonymous).code == "unauthorized")

            let wrongToken = try await client.call(.post, "/v1/greetings", key: "not-the-token-0123456789", json: ["name": "Ada"])
            #expect(wrongToken.status == .unauthorized)

            let tooLong = try await client.call(.post, "/v1/greetings", key: Self.token, json: ["name": String(repeating: "a", count: 65)])
            #expect(tooLong.status == .unprocessableContent)
            #expect(try Self.problem(tooLong).errors == [.init(field: "name", message: "must have 1 to 64 characters")])

            let missing = try await client.call(.post, "/v1/greetings", key: Self.token, json: ["nom": "Ada"])
            #expect(try Self.problem(missing).code == "validation_failed")

            let malformed = try await client.executeRequest(
                uri: "/v1/greetings", method: .post,
                headers: [.authorization: "Bearer \(Self.token)", .contentType: "application/json"], body: ByteBuffer(string: "{nope")
            )
            #expect(malformed.status == .badRequest)
            #expect(try Self.problem(malformed).code == "malformed_json")

            let wrongMethod = try await client.call(.get, "/v1/greetings", key: Self.token)
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "POST")
        }
    }

    @Test func metricsCountRequestsByRouteOverRealHTTP() async throws {
        let (app, runtime) = try await Self.makeApplication()
        try await app.test(.live) { client in
            for name in ["Ada", "Grace"] {
                let response = try await client.call(.post, "/v1/greetings", key: Self.token, json: ["name": name])
                #expect(response.status == .created)
            }
        }
        let exposition = String(decoding: runtime.metrics.exposition(), as: UTF8.self)
        #expect(exposition.contains(#"http_requests_total{method="POST",route="/v1/greetings",status="201"} 2"#))
        #expect(exposition.contains(#"code_build_info{service="__NAME__""#))
    }

    /// The executable as an orchestrator runs it: health, metrics, `--health-check`, exit 0 on SIGTERM.
    @Test func executableServesAnswersHealthCheckAndStopsOnSIGTERM() async throws {
        let port = freePort()
        let metricsPort = freePort()
        let environment = [
            "HOST": "127.0.0.1", "PORT": String(port), "METRICS_PORT": String(metricsPort), "SHUTDOWN_TIMEOUT": "5",
            "AUTH_TOKENS": Self.token,
        ]
        let process = try ServiceProcess("__NAME__", environment: environment)
        defer { process.stop() }
        _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/live", since: process.launchedAt)

        let metrics = try await LoopbackHTTP.request(.GET, "http://127.0.0.1:\(metricsPort)/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains("process_resident_memory_bytes"))

        let healthy = try await ServiceProcess.run("__NAME__", arguments: ["--health-check"], environment: environment)
        #expect(healthy.status == 0, "\(healthy.stdout)")

        process.signal(SIGTERM)
        #expect(await process.waitForExit(timeout: .seconds(8)) == 0, "exit status after SIGTERM; output: \(process.standardOutput)")

        let invalid = try await ServiceProcess.run("__NAME__", environment: ["PORT": String(port), "AUTH_TOKENS": "short"])
        #expect(invalid.status == 78, "a token under 16 characters is a configuration error")
        #expect(invalid.stderr.contains("AUTH_TOKENS"))
    }

    /// Started with nothing but `PORT`, it serves health and refuses every `/v1` request.
    @Test func executableWithoutTokensRefusesEveryRequest() async throws {
        let port = freePort()
        let process = try ServiceProcess("__NAME__", environment: ["PORT": String(port), "METRICS_PORT": "0"])
        defer { process.stop() }
        _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/live", since: process.launchedAt)
        let refused = try await LoopbackHTTP.request(
            .POST, "http://127.0.0.1:\(port)/v1/greetings",
            headers: [("Authorization", "Bearer anything-0123456789abcdef"), ("Content-Type", "application/json")],
            body: Data(#"{"name":"Ada"}"#.utf8)
        )
        #expect(refused.status == 401)
        process.signal(SIGTERM)
        #expect(await process.waitForExit(timeout: .seconds(8)) == 0)
    }

    /// Without arguments the multi-call binary runs `serve()` itself (ServiceCommand); ArgumentParser,
    /// given none, would run the same: this command, `--health-check` off.
    @Test func withoutArgumentsTheCommandServes() throws {
        let parsed = try #require(try __MODULE__Command.parseAsRoot([]) as? __MODULE__Command)
        #expect(!parsed.options.healthCheck)
        let checking = try #require(try __MODULE__Command.parseAsRoot(["--health-check"]) as? __MODULE__Command)
        #expect(checking.options.healthCheck)
    }
}
