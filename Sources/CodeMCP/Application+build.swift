import AsyncHTTPClient
import CodeRuntime
import Foundation
import Hummingbird
import Logging

/// Builds code-mcp: the `/mcp` endpoint, its sessions, and readiness that follows code-api's.
/// `main` and the tests both call this.
public func buildApplication(settings: MCPSettings, runtime: ServiceRuntime) async throws -> some ApplicationProtocol {
    let handlers = MCPHandlers(
        api: makeCodeAPIClient(settings: settings, httpClient: .shared), catalog: try ToolCatalog(contract: .bundled()),
        settings: settings, health: runtime.health, probeClient: HealthProbe.tracedClient
    )
    let sessions = SessionManager(
        settings: settings, handlers: handlers, logger: runtime.logger, metrics: MCPMetrics(factory: runtime.metrics.factory))
    runtime.health.register("api", timeout: .seconds(2)) {
        let outcome = await HealthProbe.probe(
            url: settings.apiURL.appendingPathComponent("health/ready").absoluteString, timeout: .seconds(2))
        guard outcome.healthy else { throw APIUnavailable(summary: outcome.summary) }
    }
    let router = runtime.makeRouter()
    MCPEndpoint(settings: settings, sessions: sessions).add(to: router)
    return runtime.makeApplication(router: router, services: [sessions])
}

struct APIUnavailable: Error, CustomStringConvertible {
    let summary: String
    var description: String { "code-api is not ready: \(summary)" }
}
