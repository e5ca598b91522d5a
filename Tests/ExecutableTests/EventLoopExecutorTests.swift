import AsyncHTTPClient
import CodeTestSupport
import Foundation
import NIOCore
import NIOPosix
import Testing

/// Every service runs Swift concurrency's jobs on its event loops (CodeRuntime's `EventLoopExecutor`, each
/// loop keeping the jobs enqueued on its thread in a list of its own). Only a real process has that
/// executor, so this drives one over many connections at once: a job lost or run twice would leave a
/// request without its answer, or end the process.
@Suite("Event loops as the global executor")
struct EventLoopExecutorTests {
    @Test func manyConcurrentRequestsOnManyConnectionsAreAllAnswered() async throws {
        let directory = try ServiceFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = freePort()
        let process = try ServiceProcess(
            "code-api", environment: ServiceExecutableTests.environment(for: "code-api", port: port, metricsPort: 0, directory: directory))
        defer { process.stop() }
        let base = "http://127.0.0.1:\(port)"
        _ = try await LoopbackHTTP.waitUntilAnswering("\(base)/health/live", since: process.launchedAt)
        #expect(process.standardOutput.contains(#""executor":"event-loops""#), "\(process.standardOutput.prefix(2000))")

        let authorization = ("Authorization", "Bearer \(ServiceFixtures.adminKey)")
        let created = try await LoopbackHTTP.request(
            .POST, "\(base)/v1/deployments", headers: [authorization, ("Content-Type", "application/json")],
            body: Data(#"{"service":"web","image":"ghcr.io/acme/web:1.0.0","environment":"staging","replicas":1}"#.utf8))
        #expect(created.status == 201, "\(created.text)")
        let id = try #require(try created.json()["id"] as? String)

        // Connections of their own, more than the server's loops, so that requests of many connections are
        // in the loops' job lists at once (the shared client keeps a few per host).
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        let requests = 1_200
        let answered: Int
        do {
            answered = try await Self.answered(requests, base: base, id: id, authorization: authorization, client: client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        #expect(answered == requests)
        #expect(process.isRunning, "\(process.standardError.suffix(2000))")
    }

    /// How many of `requests` requests, at most 64 in flight at a time, were answered 200 with the right
    /// body. A request that fails counts as not answered rather than ending the count, and its timeout is
    /// its own: a request waits for a connection of the client's pool only as long as 64 take.
    private static func answered(
        _ requests: Int, base: String, id: String, authorization: (String, String), client: HTTPClient
    ) async throws -> Int {
        @Sendable func answeredRight(_ index: Int) async -> Bool {
            // Alternately the cheapest request and one that reads the key and the deployment.
            let cheap = index.isMultiple(of: 2)
            var request = HTTPClientRequest(url: cheap ? "\(base)/health/live" : "\(base)/v1/deployments/\(id)")
            request.headers.add(name: authorization.0, value: authorization.1)
            do {
                let response = try await client.execute(request, timeout: .seconds(30))
                let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
                return response.status == .ok && (cheap || body.contains(id))
            } catch {
                return false
            }
        }
        return await withTaskGroup(of: Bool.self) { group in
            let inFlight = 64
            for index in 0..<inFlight { group.addTask { await answeredRight(index) } }
            var answered = 0
            var next = inFlight
            while let right = await group.next() {
                if right { answered += 1 }
                if next < requests {
                    let index = next
                    group.addTask { await answeredRight(index) }
                    next += 1
                }
            }
            return answered
        }
    }
}
