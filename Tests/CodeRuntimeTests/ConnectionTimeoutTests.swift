import CodeRuntime
import CodeTestSupport
import Foundation
import Hummingbird
import Testing

/// Slow and silent clients: the idle timeout (Hummingbird's, set from `HTTP_IDLE_TIMEOUT`) closes
/// connections that send nothing, stop within a request's head or stop within its body, and does not cut a
/// response that is being written.
/// The waits are upper bounds, long beside the 1 s timeout, because the suite runs next to a hundred
/// others on two cores; each returns as soon as the server answers or closes.
@Suite("Connection timeouts", .serialized)
struct ConnectionTimeoutTests {
    func withService(
        idleTimeout: Duration = .seconds(1),
        _ body: @Sendable (Int) async throws -> Void
    ) async throws {
        let port = freePort()
        let runtime = ServiceRuntime(
            name: "code-test",
            settings: RuntimeSettings(host: "127.0.0.1", port: port, idleTimeout: idleTimeout)
        )
        let router = runtime.makeRouter()
        router.add(middleware: RequestBodyLimitMiddleware())
        router.post("/echo") { request, _ -> String in
            String(buffer: try await request.body.collect(upTo: 1024))
        }
        router.get("/slow") { _, _ -> String in
            try await Task.sleep(for: .milliseconds(2500))
            return "finished"
        }
        let group = runtime.makeServiceGroup(runtime.makeApplication(router: router))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/live")
            try await body(port)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func silentConnectionIsClosedAfterTheIdleTimeout() async throws {
        try await withService { port in
            let connection = try RawConnection(port: port)
            let (text, closed) = await connection.receive(within: .seconds(10))
            #expect(closed, "the server closes a connection that sends nothing")
            #expect(text.isEmpty)
        }
    }

    @Test func requestHeadSentByteByByteIsCutOff() async throws {
        try await withService { port in
            let connection = try RawConnection(port: port)
            connection.send("GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            let (_, closed) = await connection.receive(within: .seconds(10))
            #expect(closed, "an unfinished request head does not hold the connection open")
        }
    }

    @Test func keepAliveConnectionServesRequestsThenClosesWhenIdle() async throws {
        try await withService { port in
            let connection = try RawConnection(port: port)
            connection.send("GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            let (text, closedEarly) = await connection.receive(within: .seconds(10), until: "\"status\"")
            #expect(text.hasPrefix("HTTP/1.1 200"))
            #expect(!closedEarly, "a keep-alive connection stays open after a response")
            #expect(await connection.receive(within: .seconds(10)).closed, "and is closed once idle for the timeout")
        }
    }

    @Test func responseLongerThanTheIdleTimeoutIsNotCut() async throws {
        try await withService { port in
            let response = try await LoopbackHTTP.request(.GET, "http://127.0.0.1:\(port)/slow")
            #expect(response.status == 200)
            #expect(response.text == "finished")
        }
    }

    @Test func bodyThatStopsArrivingDoesNotHoldTheConnection() async throws {
        try await withService { port in
            let connection = try RawConnection(port: port)
            connection.send("POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nab")
            let (_, closed) = await connection.receive(within: .seconds(10))
            #expect(closed, "a body that stops arriving does not hold the connection open")
        }
    }

    @Test func bodyThatArrivesIsServed() async throws {
        try await withService { port in
            let response = try await LoopbackHTTP.request(.POST, "http://127.0.0.1:\(port)/echo", body: Data("hello".utf8))
            #expect(response.status == 200)
            #expect(response.text == "hello")
        }
    }
}
