import AsyncHTTPClient
import CodeAPIContract
import CodeRuntime
import Foundation
import MCP
import OpenAPIRuntime

/// What code-mcp's tools, resources and prompts do, through code-api's generated client. One file each:
/// `MCPHandlers+Tools.swift`, `+Resources.swift`, `+Prompts.swift`.
struct MCPHandlers: Sendable {
    let api: Client
    let catalog: ToolCatalog
    let settings: MCPSettings
    let health: HealthChecks
    /// The client `service_health` probes the other services with (HealthProbe.tracedClient).
    let probeClient: HTTPClient

    /// Sends progress and log notifications of one tool call to its session.
    struct Reporter: Sendable {
        let notify: @Sendable (_ progress: Double, _ message: String) async -> Void
        let log: @Sendable (_ level: LogLevel, _ message: String) async -> Void
    }

    /// A deployment with its events, as get_deployment, create_deployment with `wait` and the
    /// deployment resource return it.
    struct DeploymentWithEvents: Codable, Sendable {
        let deployment: Components.Schemas.Deployment
        let events: [Components.Schemas.Event]
    }

    func deploymentWithEvents(_ id: String) async throws -> DeploymentWithEvents {
        let deployment = try await api.getDeployment(path: .init(id: id)).ok.body.json
        return DeploymentWithEvents(deployment: deployment, events: try await events(id, after: nil))
    }

    /// Every event after `after`, page by page (at most 1,000).
    func events(_ id: String, after: Int64?) async throws -> [Components.Schemas.Event] {
        var events: [Components.Schemas.Event] = []
        var cursor = after
        repeat {
            let page = try await api.listDeploymentEvents(path: .init(id: id), query: .init(after: cursor, limit: 100)).ok.body.json
            events += page.items
            cursor = page.nextAfter
        } while cursor != nil && events.count < 1000
        return events
    }
}

extension APIFailure {
    /// The failure behind an error of the generated client, which wraps what its middleware throws.
    static func from(_ error: any Error) -> APIFailure? {
        switch error {
        case let failure as APIFailure:
            return failure
        case let clientError as ClientError:
            if let failure = clientError.underlyingError as? APIFailure { return failure }
            return APIFailure(
                status: clientError.response.map { Int($0.status.code) }, problem: nil,
                reason: "code-api answered with an unexpected body: \(clientError.underlyingError)"
            )
        default:
            return nil
        }
    }
}

extension Components.Schemas.DeploymentStatus {
    var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .cancelled: true
        case .queued, .running: false
        }
    }
}
