import CodeRuntime
import CodeTestSupport
import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing

@Suite("Graceful shutdown")
struct GracefulShutdownTests {
    /// A slow request that is in flight when shutdown begins still completes; a new connection afterwards
    /// is refused; the group then returns without error.
    @Test func inFlightRequestCompletesAndNewConnectionsAreRefused() async throws {
        let port = freePort()
        let runtime = ServiceRuntime(
            name: "code-test",
            settings: RuntimeSettings(host: "127.0.0.1", port: port, shutdownTimeout: .seconds(20))
        )
        // The slow request answers when the test releases it, not after a fixed time, so on a loaded machine
        // the listener's closing is still seen while the request is in flight.
        let started = NIOLockedValueBox(false)
        let released = NIOLockedValueBox(false)
        let router = runtime.makeRouter()
        router.get("/slow") { _, _ -> String in
            started.withLockedValue { $0 = true }
            let limit = ContinuousClock.now + .seconds(15)
            while !released.withLockedValue({ $0 }), ContinuousClock.now < limit {
                try await Task.sleep(for: .milliseconds(10))
            }
            return "finished"
        }
        let group = runtime.makeServiceGroup(runtime.makeApplication(router: router))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = try await LoopbackHTTP.waitUntilAnswering("http://127.0.0.1:\(port)/health/live")

            async let slow = LoopbackHTTP.request(.GET, "http://127.0.0.1:\(port)/slow", timeout: .seconds(30))
            while !started.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            #expect(acceptsConnections(port: port))
            await group.triggerGracefulShutdown()
            // The listener closes once shutdown begins (bounded wait), while the slow request is held.
            let deadline = ContinuousClock.now + .seconds(10)
            while acceptsConnections(port: port), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(!acceptsConnections(port: port), "new connections are refused once shutdown begins")
            released.withLockedValue { $0 = true }
            let response = try await slow
            #expect(response.status == 200)
            #expect(response.text == "finished")
            try await tasks.waitForAll()
        }
    }
}
