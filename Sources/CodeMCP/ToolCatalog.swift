import MCP

/// The tools code-mcp offers, with their input and output schemas taken from the API contract
/// (`ContractSchemas`): what a tool accepts and returns is what code-api does. Names, descriptions and
/// hints are the MCP side's own. Built once at start-up; every `tools/list` answers with it.
struct ToolCatalog: Sendable {
    let tools: [Tool]

    var names: Set<String> { Set(tools.map(\.name)) }

    /// The arguments a tool takes: the properties of its input schema.
    func argumentNames(of tool: String) -> Set<String> {
        let schema = tools.first { $0.name == tool }?.inputSchema
        return Set(schema?.objectValue?["properties"]?.objectValue?.keys.map { $0 } ?? [])
    }

    init(contract: ContractSchemas) throws {
        let deployment = try contract.schema("Deployment")
        let events: Value = ["type": "array", "items": try contract.schema("Event")]
        let id: [String: Value] = ["id": try contract.parameter("id", of: "getDeployment")]
        let request = try contract.schema("DeploymentRequest")
        let serviceHealth: Value = Self.object(
            [
                "status": ["type": "string", "enum": ["ready", "not_ready", "unreachable"]],
                "http_status": ["type": "integer"],
                "checks": try contract.property("checks", of: "ReadinessReport"),
                "error": ["type": "string"],
            ],
            required: ["status"], closed: false
        )
        tools = [
            Tool(
                name: "list_deployments",
                title: "List deployments",
                description:
                    "List deployments, newest first, optionally filtered by status, service and environment. Pass next_cursor back as cursor for the next page.",
                inputSchema: Self.object(Dictionary(uniqueKeysWithValues: try contract.parameters(of: "listDeployments"))),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: try contract.schema("DeploymentPage")
            ),
            Tool(
                name: "get_deployment",
                title: "Get a deployment",
                description: "A deployment with its events: what the worker did, step by step.",
                inputSchema: Self.object(id, required: ["id"]),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: Self.object(["deployment": deployment, "events": events], required: ["deployment", "events"], closed: false)
            ),
            Tool(
                name: "create_deployment",
                title: "Create a deployment",
                description:
                    "Queue a deployment of an OCI image. dry_run checks it against validation and the deployment policy without creating it. wait follows the deployment to its end, sending progress notifications.",
                inputSchema: Self.object(
                    (request.objectValue?["properties"]?.objectValue ?? [:]).merging([
                        "dry_run": ["type": "boolean", "default": false, "description": "Validate and check the policy only."],
                        "wait": ["type": "boolean", "default": false, "description": "Follow the deployment to its end."],
                        "idempotency_key": try contract.parameter("Idempotency-Key", of: "createDeployment"),
                    ]) { contract, _ in contract },
                    required: request.objectValue?["required"]?.arrayValue?.compactMap(\.stringValue) ?? []
                ),
                annotations: .init(destructiveHint: false, idempotentHint: false, openWorldHint: true),
                outputSchema: Self.object(
                    [
                        "dry_run": ["type": "boolean"],
                        "valid": ["type": "boolean"],
                        "image_ref": try contract.schema("ImageReference"),
                        "deployment": deployment,
                        "events": events,
                        "timed_out": ["type": "boolean"],
                    ],
                    required: ["dry_run"], closed: false
                )
            ),
            Tool(
                name: "cancel_deployment",
                title: "Cancel a deployment",
                description: "Cancel a deployment: a queued one at once, a running one at its next step boundary or wait.",
                inputSchema: Self.object(id, required: ["id"]),
                annotations: .init(destructiveHint: true, idempotentHint: false, openWorldHint: true),
                outputSchema: Self.object(
                    ["deployment": deployment, "cancelled_now": ["type": "boolean"]], required: ["deployment", "cancelled_now"],
                    closed: false
                )
            ),
            Tool(
                name: "get_manifests",
                title: "Get rendered manifests",
                description: "The hardened Compose and Kubernetes manifests the worker rendered for a deployment.",
                inputSchema: Self.object(id, required: ["id"]),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: try contract.schema("Manifests")
            ),
            Tool(
                name: "service_health",
                title: "Service health",
                description: "Readiness of code-api, code-worker and code-mcp, with each readiness check.",
                inputSchema: Self.object([:]),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: Self.object(
                    ["api": serviceHealth, "worker": serviceHealth, "mcp": serviceHealth], required: ["api", "worker", "mcp"])
            ),
        ]
    }

    /// An object schema; `closed` (for arguments) rejects unknown properties.
    static func object(_ properties: [String: Value], required: [String] = [], closed: Bool = true) -> Value {
        var schema: [String: Value] = ["type": "object", "properties": .object(properties)]
        if closed { schema["additionalProperties"] = false }
        if !required.isEmpty { schema["required"] = .array(required.map { .string($0) }) }
        return .object(schema)
    }
}
