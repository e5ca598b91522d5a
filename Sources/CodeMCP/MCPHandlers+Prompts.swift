import CodeAPIContract
import MCP

/// Two prompts: planning a deployment against the policy, and investigating a failed one.
extension MCPHandlers {
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
            return try await APIRequestID.$current.withValue(requestID) {
                switch name {
                case "plan_deployment":
                    return try await planDeployment(
                        service: try argument("service"), image: try argument("image"), environment: try argument("environment"))
                case "investigate_failed_deployment":
                    return try await investigate(try ToolArguments.deploymentID(try argument("id"), tool: name))
                default:
                    throw MCPError.invalidParams("Unknown prompt: \(name)")
                }
            }
        } catch {
            guard let failure = APIFailure.from(error) else { throw error }
            if failure.status == 404 { throw MCPError.invalidParams("\(name): not found: \(failure)") }
            throw MCPError.internalError("code-api: \(failure)")
        }
    }

    private func planDeployment(service: String, image: String, environment: String) async throws -> GetPrompt.Result {
        let policy = try await api.getPolicy().ok.body.json
        let rules = policy.rules.map { "- \($0.id): \($0.description)" }.joined(separator: "\n")
        let registries = policy.allowedRegistries.map { $0.joined(separator: ", ") } ?? "any"
        return GetPrompt.Result(
            description: "Plan deploying \(image) as \(service) to \(environment)",
            messages: [
                .user(
                    .text(
                        text: """
                            Plan a deployment of the image \(image) as the service \(service) to \(environment) with CODE services.

                            The deployment policy, each rule by the id that violations report:
                            \(rules)
                            Allowed registries: \(registries).

                            1. Check the image reference against the policy; for production it must be pinned by digest.
                            2. Choose a strategy (rolling, recreate, blue_green or canary) and a replica count, and say why.
                            3. Call create_deployment with dry_run: true and fix anything it reports.
                            4. Only then call create_deployment with wait: true, and summarise the events it returns.
                            """
                    )
                )
            ]
        )
    }

    private func investigate(_ id: String) async throws -> GetPrompt.Result {
        let details = try await deploymentWithEvents(id)
        let timeline = details.events.map { event in
            let outcome = event.outcome.map { " (\($0.rawValue))" } ?? ""
            return "- #\(event.seq) attempt \(event.attempt) \(event.step) \(event.kind.rawValue)\(outcome): \(event.message)"
        }.joined(separator: "\n")
        let deployment = details.deployment
        return GetPrompt.Result(
            description: "Investigate deployment \(id)",
            messages: [
                .user(
                    .text(
                        text: """
                            Investigate why the deployment \(id) of \(deployment.image) (\(deployment.service), \(deployment.environment.rawValue)) \
                            ended as \(deployment.status.rawValue).
                            Error: \(deployment.error ?? "none recorded"). Attempts: \(deployment.attempt).

                            Events, oldest first:
                            \(timeline)

                            Explain the cause, which step failed and why, whether a retry can succeed, and what to change
                            (image, policy, health_url, webhook receiver) before deploying again. Use get_manifests if the
                            rendered manifests matter.
                            """
                    )
                )
            ]
        )
    }
}
