import AsyncHTTPClient
import CodeDomain
import CodeRuntime
import Foundation
import MCP

/// What the tools, resources and prompts do, through code-api.
struct Operations: Sendable {
    let api: APIClient
    let settings: MCPSettings
    let health: HealthChecks
    let httpClient: HTTPClient

    /// Sends progress and log notifications of one tool call to its session.
    struct Reporter: Sendable {
        let notify: @Sendable (_ progress: Double, _ message: String) async -> Void
        let log: @Sendable (_ level: LogLevel, _ message: String) async -> Void
    }

    // MARK: Tools

    func call(_ name: String, arguments: [String: Value]?, requestID: String?, reporter: Reporter) async throws -> CallTool.Result {
        do {
            switch name {
            case "list_deployments": return try await listDeployments(arguments, requestID: requestID)
            case "get_deployment": return try await getDeployment(arguments, requestID: requestID)
            case "create_deployment": return try await createDeployment(arguments, requestID: requestID, reporter: reporter)
            case "cancel_deployment": return try await cancelDeployment(arguments, requestID: requestID)
            case "get_manifests": return try await getManifests(arguments, requestID: requestID)
            case "service_health": return try await serviceHealth(arguments, requestID: requestID)
            default: throw MCPError.invalidParams("Unknown tool: \(name)")
            }
        } catch let failure as APIClient.Failure {
            await reporter.log(.warning, "\(name): \(failure)")
            return try Self.errorResult(failure)
        }
    }

    struct ListInput: Decodable {
        let status: String?
        let service: String?
        let environment: String?
        let limit: Int?
        let cursor: String?
    }

    private func listDeployments(_ arguments: [String: Value]?, requestID: String?) async throws -> CallTool.Result {
        let input = try ToolArguments.decode(ListInput.self, arguments, allowed: ["status", "service", "environment", "limit", "cursor"], tool: "list_deployments")
        let page = try await api.get(
            "/v1/deployments",
            query: ["status": input.status, "service": input.service, "environment": input.environment, "limit": input.limit.map(String.init), "cursor": input.cursor],
            requestID: requestID, as: Page<Deployment>.self
        )
        return try Self.result(page)
    }

    struct IDInput: Decodable {
        let id: String
    }

    struct DeploymentWithEvents: Codable {
        let deployment: Deployment
        let events: [DeploymentEvent]
    }

    private func getDeployment(_ arguments: [String: Value]?, requestID: String?) async throws -> CallTool.Result {
        let input = try ToolArguments.decode(IDInput.self, arguments, allowed: ["id"], tool: "get_deployment")
        return try Self.result(try await deploymentWithEvents(try ToolArguments.deploymentID(input.id, tool: "get_deployment"), requestID: requestID))
    }

    func deploymentWithEvents(_ id: String, requestID: String?) async throws -> DeploymentWithEvents {
        let deployment = try await api.get("/v1/deployments/\(id)", requestID: requestID, as: Deployment.self)
        return DeploymentWithEvents(deployment: deployment, events: try await events(id, after: nil, requestID: requestID))
    }

    /// Every event after `after`, page by page (at most 1,000).
    func events(_ id: String, after: Int64?, requestID: String?) async throws -> [DeploymentEvent] {
        var events: [DeploymentEvent] = []
        var cursor = after
        repeat {
            let page = try await api.get(
                "/v1/deployments/\(id)/events", query: ["after": cursor.map(String.init), "limit": "100"], requestID: requestID, as: EventPage.self
            )
            events += page.items
            cursor = page.nextAfter
        } while cursor != nil && events.count < 1000
        return events
    }

    struct CreateInput: Decodable {
        let service: String
        let image: String
        let environment: String
        let strategy: String?
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

        var request: DeploymentRequest {
            DeploymentRequest(service: service, image: image, environment: environment, strategy: strategy, replicas: replicas, healthURL: healthURL, labels: labels)
        }
    }

    struct CreateOutput: Codable {
        let dryRun: Bool
        var valid: Bool?
        var imageRef: ImageReference?
        var deployment: Deployment?
        var events: [DeploymentEvent]?
        var timedOut: Bool?

        enum CodingKeys: String, CodingKey {
            case valid, deployment, events
            case dryRun = "dry_run"
            case imageRef = "image_ref"
            case timedOut = "timed_out"
        }
    }

    private func createDeployment(_ arguments: [String: Value]?, requestID: String?, reporter: Reporter) async throws -> CallTool.Result {
        let input = try ToolArguments.decode(
            CreateInput.self, arguments,
            allowed: ["service", "image", "environment", "strategy", "replicas", "health_url", "labels", "dry_run", "wait", "idempotency_key"],
            tool: "create_deployment"
        )
        if input.dryRun == true {
            let validation = try await api.post("/v1/deployments/validate", body: input.request, requestID: requestID, as: ValidationResult.self).value
            return try Self.result(CreateOutput(dryRun: true, valid: validation.valid, imageRef: validation.imageRef))
        }
        let headers = input.idempotencyKey.map { ["Idempotency-Key": $0] } ?? [:]
        let created = try await api.post("/v1/deployments", body: input.request, headers: headers, requestID: requestID, as: Deployment.self).value
        await reporter.log(.info, "created deployment \(created.id) of \(created.image) to \(created.environment.rawValue)")
        guard input.wait == true else {
            return try Self.result(CreateOutput(dryRun: false, deployment: created))
        }
        return try Self.result(try await follow(created, requestID: requestID, reporter: reporter))
    }

    /// Polls the deployment until it ends (or `waitTimeout`), reporting each new event as progress.
    private func follow(_ created: Deployment, requestID: String?, reporter: Reporter) async throws -> CreateOutput {
        let deadline = ContinuousClock.now + settings.waitTimeout
        var seen: [DeploymentEvent] = []
        var current = created
        while true {
            let fresh = try await events(created.id, after: seen.last?.sequence, requestID: requestID)
            for event in fresh {
                seen.append(event)
                await reporter.notify(Double(seen.count), "\(event.step) \(event.kind.rawValue): \(event.message)")
            }
            current = try await api.get("/v1/deployments/\(created.id)", requestID: requestID, as: Deployment.self)
            if current.status.isTerminal {
                // Events written between the two reads.
                seen += try await events(created.id, after: seen.last?.sequence, requestID: requestID)
                return CreateOutput(dryRun: false, deployment: current, events: seen, timedOut: false)
            }
            if ContinuousClock.now >= deadline {
                return CreateOutput(dryRun: false, deployment: current, events: seen, timedOut: true)
            }
            try await Task.sleep(for: settings.waitPollInterval)
        }
    }

    struct CancelOutput: Codable {
        let deployment: Deployment
        let cancelledNow: Bool

        enum CodingKeys: String, CodingKey {
            case deployment
            case cancelledNow = "cancelled_now"
        }
    }

    private func cancelDeployment(_ arguments: [String: Value]?, requestID: String?) async throws -> CallTool.Result {
        let input = try ToolArguments.decode(IDInput.self, arguments, allowed: ["id"], tool: "cancel_deployment")
        let id = try ToolArguments.deploymentID(input.id, tool: "cancel_deployment")
        let (deployment, status) = try await api.post("/v1/deployments/\(id)/cancel", requestID: requestID, as: Deployment.self)
        return try Self.result(CancelOutput(deployment: deployment, cancelledNow: status == 200 && deployment.status == .cancelled))
    }

    private func getManifests(_ arguments: [String: Value]?, requestID: String?) async throws -> CallTool.Result {
        let input = try ToolArguments.decode(IDInput.self, arguments, allowed: ["id"], tool: "get_manifests")
        let id = try ToolArguments.deploymentID(input.id, tool: "get_manifests")
        return try Self.result(try await api.get("/v1/deployments/\(id)/manifests", requestID: requestID, as: DeploymentManifests.self))
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

    private func serviceHealth(_ arguments: [String: Value]?, requestID: String?) async throws -> CallTool.Result {
        struct Empty: Decodable {}
        _ = try ToolArguments.decode(Empty.self, arguments, allowed: [], tool: "service_health")
        async let api = remoteHealth(settings.apiURL)
        async let worker = remoteHealth(settings.workerURL)
        let own = await health.readiness()
        let mcp = ServiceHealth(status: own.status, httpStatus: own.isReady ? 200 : 503, checks: own.checks, error: nil)
        return try Self.result(HealthReport(api: await api, worker: await worker, mcp: mcp))
    }

    private func remoteHealth(_ base: URL) async -> ServiceHealth {
        struct Report: Decodable {
            let status: String
            let checks: [HealthChecks.Result]
        }
        let url = base.appendingPathComponent("health/ready").absoluteString
        let outcome = await HealthProbe.probe(url: url, timeout: .seconds(2), client: httpClient)
        guard let status = outcome.status else {
            return ServiceHealth(status: "unreachable", httpStatus: nil, checks: nil, error: "\(url): \(outcome.summary)")
        }
        let report = outcome.body.flatMap { try? JSONDecoder().decode(Report.self, from: $0) }
        return ServiceHealth(status: report?.status ?? "not_ready", httpStatus: status, checks: report?.checks, error: nil)
    }

    // MARK: Results

    static func result(_ value: some Encodable) throws -> CallTool.Result {
        let structured = try JSONValue.from(value)
        return CallTool.Result(content: [.text(text: JSONValue.text(structured), annotations: nil, _meta: nil)], structuredContent: Optional(structured), isError: false)
    }

    static func errorResult(_ failure: APIClient.Failure) throws -> CallTool.Result {
        let structured: Value
        if let problem = failure.problem {
            structured = try JSONValue.from(problem)
        } else {
            structured = ["code": "api_unavailable", "detail": .string(failure.reason)]
        }
        return CallTool.Result(content: [.text(text: JSONValue.text(structured), annotations: nil, _meta: nil)], structuredContent: Optional(structured), isError: true)
    }

    // MARK: Resources

    static let policyURI = "code://policy"
    static let deploymentURIPrefix = "code://deployments/"

    static var resources: [Resource] {
        [Resource(name: "policy", uri: policyURI, title: "Deployment policy", description: "The rules every deployment must satisfy, with their stable ids.", mimeType: "application/json")]
    }

    static var resourceTemplates: [Resource.Template] {
        [Resource.Template(uriTemplate: "code://deployments/{id}", name: "deployment", title: "A deployment", description: "A deployment and its events.", mimeType: "application/json")]
    }

    func read(_ uri: String, requestID: String?) async throws -> ReadResource.Result {
        let value: Value
        do {
            if uri == Self.policyURI {
                value = try JSONValue.from(try await api.get("/v1/policy", requestID: requestID, as: PolicyDocument.self))
            } else if uri.hasPrefix(Self.deploymentURIPrefix) {
                let id = try ToolArguments.deploymentID(String(uri.dropFirst(Self.deploymentURIPrefix.count)), tool: "resources/read")
                value = try JSONValue.from(try await deploymentWithEvents(id, requestID: requestID))
            } else {
                throw MCPError.invalidParams("Unknown resource: \(uri)")
            }
        } catch let failure as APIClient.Failure where failure.status == 404 {
            throw MCPError.invalidParams("Resource not found: \(uri)")
        } catch let failure as APIClient.Failure {
            throw MCPError.internalError("code-api: \(failure)")
        }
        return ReadResource.Result(contents: [.text(JSONValue.text(value), uri: uri, mimeType: "application/json")])
    }

    // MARK: Prompts

    static var prompts: [Prompt] {
        [
            Prompt(
                name: "plan_deployment",
                title: "Plan a deployment",
                description: "Plan a deployment that satisfies the policy, check it with a dry run, then create it.",
                arguments: [
                    .init(name: "service", description: "Service name (a DNS label)", required: true),
                    .init(name: "image", description: "OCI image reference", required: true),
                    .init(name: "environment", description: "development, staging or production", required: true),
                ]
            ),
            Prompt(
                name: "investigate_failed_deployment",
                title: "Investigate a failed deployment",
                description: "Read a deployment's events and explain why it failed and what to do.",
                arguments: [.init(name: "id", description: "Deployment id", required: true)]
            ),
        ]
    }

    func prompt(_ name: String, arguments: [String: String]?, requestID: String?) async throws -> GetPrompt.Result {
        func argument(_ key: String) throws -> String {
            guard let value = arguments?[key], !value.isEmpty else { throw MCPError.invalidParams("\(name): missing argument '\(key)'") }
            return value
        }
        do {
            switch name {
            case "plan_deployment":
                let service = try argument("service")
                let image = try argument("image")
                let environment = try argument("environment")
                let policy = try await api.get("/v1/policy", requestID: requestID, as: PolicyDocument.self)
                let rules = policy.rules.map { "- \($0.id): \($0.description)" }.joined(separator: "\n")
                let registries = policy.allowedRegistries.map { $0.joined(separator: ", ") } ?? "any"
                return GetPrompt.Result(
                    description: "Plan deploying \(image) as \(service) to \(environment)",
                    messages: [.user(.text(text: """
                    Plan a deployment of the image \(image) as the service \(service) to \(environment) with CODE services.

                    The deployment policy, each rule by the id that violations report:
                    \(rules)
                    Allowed registries: \(registries).

                    1. Check the image reference against the policy; for production it must be pinned by digest.
                    2. Choose a strategy (rolling, recreate, blue_green or canary) and a replica count, and say why.
                    3. Call create_deployment with dry_run: true and fix anything it reports.
                    4. Only then call create_deployment with wait: true, and summarise the events it returns.
                    """))]
                )
            case "investigate_failed_deployment":
                let id = try ToolArguments.deploymentID(try argument("id"), tool: name)
                let details = try await deploymentWithEvents(id, requestID: requestID)
                let timeline = details.events.map { event in
                    "- #\(event.sequence) attempt \(event.attempt) \(event.step) \(event.kind.rawValue)\(event.outcome.map { " (\($0.rawValue))" } ?? ""): \(event.message)"
                }.joined(separator: "\n")
                let deployment = details.deployment
                return GetPrompt.Result(
                    description: "Investigate deployment \(id)",
                    messages: [.user(.text(text: """
                    Investigate why the deployment \(id) of \(deployment.image) (\(deployment.service), \(deployment.environment.rawValue)) ended as \(deployment.status.rawValue).
                    Error: \(deployment.error ?? "none recorded"). Attempts: \(deployment.attempt).

                    Events, oldest first:
                    \(timeline)

                    Explain the cause, which step failed and why, whether a retry can succeed, and what to change
                    (image, policy, health_url, webhook receiver) before deploying again. Use get_manifests if the
                    rendered manifests matter.
                    """))]
                )
            default:
                throw MCPError.invalidParams("Unknown prompt: \(name)")
            }
        } catch let failure as APIClient.Failure where failure.status == 404 {
            throw MCPError.invalidParams("\(name): not found: \(failure)")
        } catch let failure as APIClient.Failure {
            throw MCPError.internalError("code-api: \(failure)")
        }
    }
}
