import CodeAPIContract
import CodeRuntime
import Foundation
import MCP

/// The six tools. Arguments are checked against the tool's schema (unknown names, wrong types and values
/// outside the contract's enums are -32602); API problems become `isError` results with the problem.
extension MCPHandlers {
    func call(_ name: String, arguments: [String: Value]?, requestID: String?, reporter: Reporter) async throws -> ToolAnswer {
        do {
            return try await APIRequestID.$current.withValue(requestID) {
                switch name {
                case "list_deployments": try await listDeployments(arguments)
                case "get_deployment": try await getDeployment(arguments)
                case "create_deployment": try await createDeployment(arguments, reporter: reporter)
                case "cancel_deployment": try await cancelDeployment(arguments)
                case "get_manifests": try await getManifests(arguments)
                case "service_health": try await serviceHealth(arguments)
                default: throw MCPError.invalidParams("Unknown tool: \(name)")
                }
            }
        } catch {
            guard let failure = APIFailure.from(error) else { throw error }
            await reporter.log(.warning, "\(name): \(failure)")
            return try ToolAnswer.failure(failure)
        }
    }

    private func arguments<Input: Decodable>(_ type: Input.Type, _ arguments: [String: Value]?, tool: String) throws -> Input {
        try ToolArguments.decode(type, arguments, allowed: catalog.argumentNames(of: tool), tool: tool)
    }

    struct ListInput: Decodable {
        let status: Components.Schemas.DeploymentStatus?
        let service: String?
        let environment: Components.Schemas.Environment?
        let limit: Int?
        let cursor: String?
    }

    private func listDeployments(_ arguments: [String: Value]?) async throws -> ToolAnswer {
        let input = try self.arguments(ListInput.self, arguments, tool: "list_deployments")
        return try await ToolAnswer.passingOn {
            try await api.listDeployments(
                query: .init(
                    status: input.status, service: input.service, environment: input.environment, limit: input.limit, cursor: input.cursor)
            ).ok.body.json
        }
    }

    struct IDInput: Decodable {
        let id: String
    }

    private func getDeployment(_ arguments: [String: Value]?) async throws -> ToolAnswer {
        let input = try self.arguments(IDInput.self, arguments, tool: "get_deployment")
        return try ToolAnswer.value(try await deploymentWithEvents(try ToolArguments.deploymentID(input.id, tool: "get_deployment")))
    }

    struct CreateInput: Decodable {
        let service: String
        let image: String
        let environment: Components.Schemas.Environment
        let strategy: Components.Schemas.Strategy?
        let replicas: Int?
        let healthURL: String?
        let labels: [String: String]?
        let dryRun: Bool?
        let wait: Bool?
        let idempotencyKey: String?

        enum CodingKeys: String, CodingKey {
            case service, image, environment, strategy, replicas, labels, wait
            case healthURL = "health_url"
            case dryRun = "dry_run"
            case idempotencyKey = "idempotency_key"
        }

        var request: Components.Schemas.DeploymentRequest {
            .init(
                service: service, image: image, environment: environment, strategy: strategy, replicas: replicas, healthUrl: healthURL,
                labels: labels.map { .init(additionalProperties: $0) }
            )
        }
    }

    struct CreateOutput: Codable {
        let dryRun: Bool
        var valid: Bool?
        var imageRef: Components.Schemas.ImageReference?
        var deployment: Components.Schemas.Deployment?
        var events: [Components.Schemas.Event]?
        var timedOut: Bool?

        enum CodingKeys: String, CodingKey {
            case valid, deployment, events
            case dryRun = "dry_run"
            case imageRef = "image_ref"
            case timedOut = "timed_out"
        }
    }

    private func createDeployment(_ arguments: [String: Value]?, reporter: Reporter) async throws -> ToolAnswer {
        let input = try self.arguments(CreateInput.self, arguments, tool: "create_deployment")
        if input.dryRun == true {
            let validation = try await api.validateDeployment(body: .json(input.request)).ok.body.json
            return try ToolAnswer.value(CreateOutput(dryRun: true, valid: validation.valid, imageRef: validation.imageRef))
        }
        // APICallMiddleware puts the client's label in front of the key.
        let created = try await api.createDeployment(headers: .init(idempotencyKey: input.idempotencyKey), body: .json(input.request))
            .created.body.json
        await reporter.log(.info, "created deployment \(created.id) of \(created.image) to \(created.environment.rawValue)")
        guard input.wait == true else {
            return try ToolAnswer.value(CreateOutput(dryRun: false, deployment: created))
        }
        return try ToolAnswer.value(try await follow(created, reporter: reporter))
    }

    /// Polls the deployment until it ends (or `waitTimeout`), reporting each new event as progress.
    private func follow(_ created: Components.Schemas.Deployment, reporter: Reporter) async throws -> CreateOutput {
        let deadline = ContinuousClock.now + settings.waitTimeout
        var seen: [Components.Schemas.Event] = []
        var current = created
        while true {
            for event in try await events(created.id, after: seen.last?.seq) {
                seen.append(event)
                await reporter.notify(Double(seen.count), "\(event.step) \(event.kind.rawValue): \(event.message)")
            }
            current = try await api.getDeployment(path: .init(id: created.id)).ok.body.json
            if current.status.isTerminal {
                // Events written between the two reads.
                seen += try await events(created.id, after: seen.last?.seq)
                return CreateOutput(dryRun: false, deployment: current, events: seen, timedOut: false)
            }
            if ContinuousClock.now >= deadline {
                return CreateOutput(dryRun: false, deployment: current, events: seen, timedOut: true)
            }
            try await Task.sleep(for: settings.waitPollInterval)
        }
    }

    struct CancelOutput: Codable {
        let deployment: Components.Schemas.Deployment
        let cancelledNow: Bool

        enum CodingKeys: String, CodingKey {
            case deployment
            case cancelledNow = "cancelled_now"
        }
    }

    private func cancelDeployment(_ arguments: [String: Value]?) async throws -> ToolAnswer {
        let input = try self.arguments(IDInput.self, arguments, tool: "cancel_deployment")
        let id = try ToolArguments.deploymentID(input.id, tool: "cancel_deployment")
        switch try await api.cancelDeployment(path: .init(id: id)) {
        case .ok(let cancelled):
            let deployment = try cancelled.body.json
            return try ToolAnswer.value(CancelOutput(deployment: deployment, cancelledNow: deployment.status == .cancelled))
        case .accepted(let requested):
            return try ToolAnswer.value(CancelOutput(deployment: try requested.body.json, cancelledNow: false))
        case let other:
            throw APIFailure(status: nil, problem: nil, reason: "code-api answered the cancellation with \(other)")
        }
    }

    private func getManifests(_ arguments: [String: Value]?) async throws -> ToolAnswer {
        let input = try self.arguments(IDInput.self, arguments, tool: "get_manifests")
        let id = try ToolArguments.deploymentID(input.id, tool: "get_manifests")
        return try await ToolAnswer.passingOn { try await api.getDeploymentManifests(path: .init(id: id)).ok.body.json }
    }

    struct ServiceHealth: Codable {
        let status: String
        let httpStatus: Int?
        let checks: [HealthChecks.Result]?
        let error: String?

        enum CodingKeys: String, CodingKey {
            case status, checks, error
            case httpStatus = "http_status"
        }
    }

    struct HealthReport: Codable {
        let api: ServiceHealth
        let worker: ServiceHealth
        let mcp: ServiceHealth
    }

    private func serviceHealth(_ arguments: [String: Value]?) async throws -> ToolAnswer {
        struct Empty: Decodable {}
        _ = try self.arguments(Empty.self, arguments, tool: "service_health")
        async let api = remoteHealth(settings.apiURL)
        async let worker = remoteHealth(settings.workerURL)
        let own = await health.readiness()
        let mcp = ServiceHealth(status: own.status, httpStatus: own.isReady ? 200 : 503, checks: own.checks, error: nil)
        return try ToolAnswer.value(HealthReport(api: await api, worker: await worker, mcp: mcp))
    }

    private func remoteHealth(_ base: URL) async -> ServiceHealth {
        struct Report: Decodable {
            let status: String
            let checks: [HealthChecks.Result]
        }
        let url = base.appendingPathComponent("health/ready").absoluteString
        let outcome = await HealthProbe.probe(url: url, timeout: .seconds(2), client: probeClient)
        guard let status = outcome.status else {
            return ServiceHealth(status: "unreachable", httpStatus: nil, checks: nil, error: "\(url): \(outcome.summary)")
        }
        let report = outcome.body.flatMap { try? JSONDecoder().decode(Report.self, from: $0) }
        return ServiceHealth(status: report?.status ?? "not_ready", httpStatus: status, checks: report?.checks, error: nil)
    }
}
