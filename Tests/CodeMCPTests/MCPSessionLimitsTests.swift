import Foundation
import Testing

@testable import CodeMCP

/// Issue 12, defect 6: the bounds added to sessions (the replay buffer's bytes, the session's lifetime).
@Suite("MCP session limits", .serialized)
struct MCPSessionLimitsTests {
    @Test func eventStoreKeepsAtMostItsByteBudget() {
        var store = SessionEventStore(byteBudget: 10_000)
        let payload = Data(repeating: UInt8(ascii: "x"), count: 3000)
        var ids: [String] = []
        for index in 0..<100 {
            ids.append(store.append(stream: "\(index)", message: payload))
            #expect(store.retainedBytes <= 10_000)
        }
        #expect(store.retainedEvents == 3)
        #expect(store.replay(after: ids[0]) == nil, "evicted")
        #expect(
            store.replay(after: ids[98])?.events.count == 0, "kept, and nothing of its stream after it")
        // Ended streams are remembered only while they have events kept.
        for index in 0..<100 { store.finish(stream: "\(index)") }
        #expect(store.finishedStreamCount == 3)
        #expect(store.replay(after: ids[99])?.finished == true)
        store.reopen(stream: "99")
        #expect(store.replay(after: ids[99])?.finished == false, "a new request with the same id")
        // An event larger than the whole budget is not kept at all.
        let huge = store.append(stream: "big", message: Data(count: 20_000))
        #expect(store.replay(after: huge) == nil)
        #expect(store.retainedBytes <= 10_000)
        // A budget of 0 keeps nothing: no replay.
        var none = SessionEventStore(byteBudget: 0)
        #expect(none.replay(after: none.append(stream: "1", message: nil)) == nil)
        #expect(none.retainedEvents == 0)
        none.finish(stream: "1")
        #expect(none.finishedStreamCount == 0)
    }

    @Test func sessionsEndAtTheirMaximumLifetimeEvenWhenBusy() async throws {
        try await withLiveStack { stack in
            try await withMCP(stack.mcpSettings { $0.sessionMaxLifetime = .seconds(1) }) { url, runtime in
                // The lifetime runs from when the session opened, during `initialize`: measure from before it
                // (a slow initialize on a loaded machine would otherwise eat into the 1 s).
                let start = ContinuousClock.now
                let client = try await RawMCPClient(url: url, token: stack.token).initialized()
                var status = 200
                var id = 1
                // Busy all along (never idle), yet ended after its lifetime (sweeps run every 250 ms).
                while status == 200, ContinuousClock.now - start < .seconds(5) {
                    status = try await client.call(id, "tools/list").status
                    id += 1
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(status == 404)
                #expect(ContinuousClock.now - start >= .milliseconds(900))
                let metrics = String(decoding: runtime.metrics.exposition(), as: UTF8.self)
                #expect(metrics.contains("code_mcp_sessions_open 0"))
            }
        }
    }

}
