import CodeRuntime
import CodeTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import Testing

/// Log lines captured in memory through the real JSON handler.
final class CapturedLogs: Sendable {
    private let lines = NIOLockedValueBox<[String]>([])

    var logger: Logger {
        let output = LogOutput { [lines] line in lines.withLockedValue { $0.append(line) } }
        var logger = Logger(label: "test") { label in JSONLogHandler(label: label, output: output) }
        logger.logLevel = .debug
        return logger
    }

    var records: [[String: Any]] {
        lines.withLockedValue { $0 }.compactMap { line in
            try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        }
    }
}

struct Boom: Error, CustomStringConvertible {
    var description: String { "SELECT secret FROM internals" }
}

struct Payload: Decodable, Sendable {
    let name: String
    let count: Int
}

/// A runtime with a few routes that exercise the shared behaviour.
func makeTestApplication(logs: CapturedLogs = CapturedLogs(), ready: @escaping @Sendable () async throws -> Void = {}) -> (
    some ApplicationProtocol, ServiceRuntime
) {
    let runtime = ServiceRuntime(name: "code-test", settings: RuntimeSettings(host: "127.0.0.1", port: 0), logger: logs.logger)
    runtime.health.register("dependency", timeout: .milliseconds(300), ready)
    let router = runtime.makeRouter()
    router.get("/items/{id}") { _, context in
        context.logger.info("looking up item")
        return "item \(context.parameters.get("id") ?? "")"
    }
    router.get("/fail") { _, _ -> String in throw Boom() }
    // Bodies of known length written in parts, as swift-openapi-hummingbird writes them; one fails.
    router.get("/parts") { _, _ in
        Response(
            status: .ok,
            body: ResponseBody(contentLength: 16) { writer in
                try await writer.write(ByteBuffer(string: "part one,"))
                try await writer.write(ByteBuffer(string: " part 2"))
                try await writer.finish(nil)
            })
    }
    router.get("/broken") { _, _ in
        Response(
            status: .ok,
            body: ResponseBody(contentLength: 100) { writer in
                try await writer.write(ByteBuffer(string: "half"))
                throw Boom()
            })
    }
    // A stream of unknown length whose last part comes 300 ms after the head.
    router.get("/stream") { _, _ in
        Response(
            status: .ok,
            body: ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "first "))
                try await Task.sleep(for: .milliseconds(300))
                try await writer.write(ByteBuffer(string: "last"))
                try await writer.finish(nil)
            })
    }
    router.get("/gone") { _, _ -> String in throw ServiceError.notFound("Item 7 does not exist.") }
    router.post("/payloads") { request, _ -> String in
        let payload = try await JSONBody.decode(Payload.self, from: request, limit: 64)
        return "\(payload.name) \(payload.count)"
    }
    return (runtime.makeApplication(router: router), runtime)
}

/// The problem body of a response; nil (and a failed expectation) when it is not one.
func problem(_ response: TestResponse) -> ProblemDetails? {
    #expect(response.headers[.contentType] == "application/problem+json")
    let body = try? JSONDecoder().decode(ProblemDetails.self, from: Data(buffer: response.body))
    #expect(body != nil, "not a problem body: \(String(buffer: response.body))")
    return body
}

@Suite("Health, metrics, request ids and problems over HTTP")
struct RuntimeHTTPTests {
    @Test func healthAndLivenessAnswerWithoutDependencies() async throws {
        let (app, _) = makeTestApplication(ready: { throw ServiceError.internalError })
        try await app.test(.router) { client in
            for path in ["/health", "/health/live"] {
                try await client.execute(uri: path, method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                    let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                    #expect(body?["status"] as? String == "ok")
                    #expect(body?["service"] as? String == "code-test")
                    #expect(body?["version"] as? String == BuildInfo.version)
                }
            }
        }
    }

    @Test func failingCheckMakesReadinessA503ListingTheCheck() async throws {
        struct DatabaseDown: Error, CustomStringConvertible { var description: String { "database unreachable" } }
        let (app, _) = makeTestApplication(ready: { throw DatabaseDown() })
        try await app.test(.live) { client in
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let report = try JSONDecoder().decode(HealthChecks.Report.self, from: Data(buffer: response.body))
                #expect(report.status == "not_ready")
                #expect(report.checks.map(\.name) == ["dependency"])
                #expect(report.checks.first?.status == "failed")
                #expect(report.checks.first?.error == "database unreachable")
            }
            try await client.execute(uri: "/health/live", method: .get) { response in
                #expect(response.status == .ok, "liveness must not follow the dependency")
            }
        }
    }

    @Test func slowCheckTimesOut() async throws {
        let (app, _) = makeTestApplication(ready: { try await Task.sleep(for: .seconds(30)) })
        try await app.test(.live) { client in
            let start = ContinuousClock.now
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let report = try JSONDecoder().decode(HealthChecks.Report.self, from: Data(buffer: response.body))
                #expect(report.checks.first?.error?.contains("timed out") == true)
            }
            #expect(ContinuousClock.now - start < .seconds(10), "the check's 300 ms timeout bounds readiness")
        }
    }

    @Test func passingChecksMakeReadinessA200() async throws {
        let (app, _) = makeTestApplication()
        try await app.test(.router) { client in
            try await client.execute(uri: "/health/ready", method: .get) { response in
                #expect(response.status == .ok)
                let report = try JSONDecoder().decode(HealthChecks.Report.self, from: Data(buffer: response.body))
                #expect(report.status == "ready")
                #expect(report.checks.first?.status == "ok")
            }
        }
    }

    @Test func metricsCountRequestsByRouteTemplate() async throws {
        let (app, runtime) = makeTestApplication()
        try await app.test(.live) { client in
            for id in ["1", "2", "3"] {
                try await client.execute(uri: "/items/\(id)", method: .get) { #expect($0.status == .ok) }
            }
            try await client.execute(uri: "/gone", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/no/such/route", method: .get) { #expect($0.status == .notFound) }
        }
        // Scrape through the metrics listener's own router.
        let metricsApp = Application(router: runtime.metrics.makeRouter())
        try await metricsApp.test(.live) { client in
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
                let text = String(buffer: response.body)
                #expect(text.contains(#"http_requests_total{method="GET",route="/items/{id}",status="200"} 3"#))
                #expect(text.contains(#"http_requests_total{method="GET",route="/gone",status="404"} 1"#))
                #expect(text.contains(#"http_request_duration_seconds_count{method="GET",route="/items/{id}",status="200"} 3"#))
                #expect(!text.contains("/items/1"), "raw paths never become labels")
                #expect(!text.contains("/no/such/route"), "unknown paths never become labels")
                #expect(text.contains("process_resident_memory_bytes"))
                #expect(text.contains("process_cpu_seconds_total"))
                #expect(text.contains("process_open_fds"))
                #expect(text.contains("process_start_time_seconds"))
                #expect(
                    text.contains(
                        #"code_build_info{service="code-test",version="\#(BuildInfo.version)",revision="\#(BuildInfo.revision)"} 1"#))
            }
        }
    }

    /// A body of known length is sent whole, and one that fails while being produced is a problem answer
    /// rather than a 200 cut short.
    @Test func bodiesOfKnownLengthAreSentWholeOrAsAProblem() async throws {
        let (app, _) = makeTestApplication()
        try await app.test(.live) { client in
            try await client.execute(uri: "/parts", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "part one, part 2")
                #expect(response.headers[.contentLength] == "16")
            }
            try await client.execute(uri: "/broken", method: .get) { response in
                #expect(response.status == .internalServerError)
                #expect(problem(response)?.code == "internal_error")
                #expect(response.headers[.xRequestID] != nil)
            }
        }
    }

    /// A streamed body is measured until it has been written; a body of known length when it is returned.
    @Test func aStreamIsMeasuredUntilWritten() async throws {
        let logs = CapturedLogs()
        let (app, _) = makeTestApplication(logs: logs)
        try await app.test(.live) { client in
            try await client.execute(uri: "/stream", method: .get) { #expect(String(buffer: $0.body) == "first last") }
            try await client.execute(uri: "/items/1", method: .get) { #expect($0.status == .ok) }
        }
        let access = logs.records.filter { $0["message"] as? String == "request" }
        let stream = try #require(access.first { $0["route"] as? String == "/stream" })
        #expect((stream["duration_ms"] as? Double ?? 0) >= 300, "\(stream)")
        #expect(access.contains { $0["route"] as? String == "/items/{id}" && $0["status"] as? Int == 200 })
    }

    @Test func requestIDIsAcceptedEchoedAndLogged() async throws {
        let logs = CapturedLogs()
        let (app, _) = makeTestApplication(logs: logs)
        try await app.test(.live) { client in
            try await client.execute(uri: "/items/9", method: .get, headers: [.xRequestID: "trace-42.a:b_c"]) { response in
                #expect(response.headers[.xRequestID] == "trace-42.a:b_c")
            }
        }
        let lines = logs.records.filter { $0["request_id"] as? String == "trace-42.a:b_c" }
        #expect(lines.contains { $0["message"] as? String == "looking up item" }, "handler logs carry the id")
        let access = try #require(lines.first { $0["message"] as? String == "request" })
        #expect(access["method"] as? String == "GET")
        #expect(access["route"] as? String == "/items/{id}")
        #expect(access["status"] as? Int == 200)
        #expect(access["duration_ms"] is Double)
        #expect(logs.records.filter { $0["message"] as? String == "request" }.count == 1, "each request is logged once")
    }

    @Test(arguments: ["", String(repeating: "a", count: 129), "bad id", "x\r\nInjected: 1", "ünïcode"])
    func unsafeRequestIDsAreReplaced(candidate: String) async throws {
        #expect(!RequestIdentifier.isAcceptable(candidate))
        let replacement = RequestIdentifier.accepting(candidate)
        #expect(replacement != candidate)
        #expect(RequestIdentifier.isAcceptable(replacement))
    }

    /// Generated ids are version 4 UUIDs (lower case), and differ.
    @Test func generatedRequestIDsAreRandomUUIDs() {
        let ids = (0..<1000).map { _ in RequestIdentifier.generate() }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(20) {
            let uuid = UUID(uuidString: id)
            #expect(uuid != nil && id == id.lowercased(), "\(id)")
            let bytes = uuid.map { withUnsafeBytes(of: $0.uuid) { Array($0) } } ?? []
            #expect(bytes.count == 16 && bytes[6] >> 4 == 4 && bytes[8] >> 6 == 0b10, "version 4, RFC 4122 variant: \(id)")
        }
    }

    @Test func missingRequestIDIsGenerated() async throws {
        let (app, _) = makeTestApplication()
        try await app.test(.router) { client in
            let first = try await client.execute(uri: "/items/1", method: .get) { $0.headers[.xRequestID] }
            let second = try await client.execute(uri: "/items/1", method: .get) { $0.headers[.xRequestID] }
            #expect(first != nil)
            #expect(first != second)
        }
    }

    @Test func errorsAreProblemDetailsWithStableCodes() async throws {
        let logs = CapturedLogs()
        let (app, _) = makeTestApplication(logs: logs)
        try await app.test(.router) { client in
            try await client.execute(uri: "/gone", method: .get, headers: [.xRequestID: "r1"]) { response in
                #expect(response.status == .notFound)
                let body = try #require(problem(response))
                #expect(body.code == "not_found")
                #expect(body.status == 404)
                #expect(body.detail == "Item 7 does not exist.")
                #expect(body.requestID == "r1")
                #expect(body.type == "urn:code-services:problem:not_found")
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(problem(response)?.code == "not_found")
            }
            try await client.execute(uri: "/items/3", method: .delete) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET")
                #expect(problem(response)?.code == "method_not_allowed")
            }
            try await client.execute(uri: "/fail", method: .get) { response in
                #expect(response.status == .internalServerError)
                let body = try #require(problem(response))
                #expect(body.code == "internal_error")
                let text = String(buffer: response.body)
                #expect(!text.contains("SELECT"), "internal messages never reach the client")
            }
        }
        #expect(logs.records.contains { ($0["error"] as? String)?.contains("SELECT secret") == true }, "but they are logged")
    }

    @Test func jsonBodiesHaveExplicitLimitsAndErrors() async throws {
        let (app, _) = makeTestApplication()
        try await app.test(.router) { client in
            let json: HTTPFields = [.contentType: "application/json"]
            try await client.execute(uri: "/payloads", method: .post, headers: json, body: ByteBuffer(string: #"{"name":"a","count":2}"#)) {
                #expect($0.status == .ok)
                #expect(String(buffer: $0.body) == "a 2")
            }
            try await client.execute(uri: "/payloads", method: .post, headers: [.contentType: "text/plain"], body: ByteBuffer(string: "{}"))
            {
                #expect($0.status == .unsupportedMediaType)
                #expect(problem($0)?.code == "unsupported_media_type")
            }
            try await client.execute(
                uri: "/payloads", method: .post, headers: json, body: ByteBuffer(string: String(repeating: " ", count: 65) + "{}")
            ) {
                #expect($0.status == .contentTooLarge)
                #expect(problem($0)?.code == "payload_too_large")
            }
            try await client.execute(uri: "/payloads", method: .post, headers: json, body: ByteBuffer(string: "{not json")) {
                #expect($0.status == .badRequest)
                #expect(problem($0)?.code == "malformed_json")
            }
            try await client.execute(
                uri: "/payloads", method: .post, headers: json, body: ByteBuffer(string: #"{"name":"a","count":"two"}"#)
            ) {
                #expect($0.status == .unprocessableContent)
                let body = try #require(problem($0))
                #expect(body.code == "validation_failed")
                #expect(body.errors == [.init(field: "count", message: "must be an integer")])
            }
            try await client.execute(uri: "/payloads", method: .post, headers: json, body: ByteBuffer(string: #"{"count":1}"#)) {
                response in
                #expect(problem(response)?.errors == [.init(field: "name", message: "is required")])
            }
        }
    }
}
