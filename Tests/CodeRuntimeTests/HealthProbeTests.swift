import CodeRuntime
import CodeTestSupport
import Testing

@Suite("Health probe")
struct HealthProbeTests {
    /// A service that is not running is reported by the refused connection, not after the probe's deadline
    /// (async-http-client retries connecting until the deadline unless told not to). The deadline here is a
    /// minute and the bound ten seconds: only a probe that waits for its deadline can miss it.
    @Test(arguments: [false, true])
    func aRefusedConnectionIsTheAnswer(traced: Bool) async throws {
        let client = traced ? HealthProbe.tracedClient : HealthProbe.untracedClient
        let url = "http://127.0.0.1:\(freePort())/health/ready"
        let outcome = try await withThrowingTaskGroup(of: HealthProbe.Outcome?.self) { group in
            group.addTask { await HealthProbe.probe(url: url, timeout: .seconds(60), client: client) }
            group.addTask {
                try await Task.sleep(for: .seconds(10))
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let answered = try #require(outcome, "the probe waited for its deadline")
        #expect(!answered.healthy)
        #expect(answered.status == nil)
    }
}
