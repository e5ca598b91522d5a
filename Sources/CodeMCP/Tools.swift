import CodeDomain
import CodeRuntime
import Foundation
import MCP

/// The tools code-mcp offers. Each has an input and an output schema; results carry `structuredContent`
/// and the same JSON as text. API problems become `isError` results with the problem detail; unknown tools
/// and invalid arguments are JSON-RPC errors (-32602).
enum CodeTools {
    static let names = definitions.map(\.name)

    /// Built once: every `tools/list` answers with these.
    static let definitions: [Tool] = {
        [
            Tool(
                name: "list_deployments",
                title: "List deployments",
                description: "List deployments, newest first, optionally filtered by status, service and environment. Pass next_cursor back as cursor for the next page.",
                inputSchema: object([
                    "status": ["type": "string", "enum": .array(DeploymentStatus.allCases.map { .string($0.rawValue) })],
                    "service": Schemas.serviceName,
                    "environment": Schemas.environment,
                    "limit": ["type": "integer", "minimum": 1, "maximum": 100, "default": 20],
                    "cursor": ["type": "string", "pattern": "^[0-9a-z]{0,12}$"],
                ]),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: object(["items": ["type": "array", "items": Schemas.deployment], "next_cursor": ["type": "string"]], required: ["items"])
            ),
            Tool(
                name: "get_deployment",
                title: "Get a deployment",
                description: "A deployment with its events: what the worker did, step by step.",
                inputSchema: object(["id": Schemas.deploymentID], required: ["id"]),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: object(["deployment": Schemas.deployment, "events": ["type": "array", "items": Schemas.event]], required: ["deployment", "events"])
            ),
            Tool(
                name: "create_deployment",
                title: "Create a deployment",
                description: "Queue a deployment of an OCI image. dry_run checks it against validation and the deployment policy without creating it. wait follows the deployment to its end, sending progress notifications.",
                inputSchema: object([
                    "service": Schemas.serviceName,
                    "image": ["type": "string", "minLength": 1, "maxLength": 512, "description": "[registry/]repository[:tag][@digest]"],
                    "environment": Schemas.environment,
                    "strategy": ["type": "string", "enum": .array(DeploymentStrategy.allCases.map { .string($0.rawValue) })],
                    "replicas": ["type": "integer", "minimum": 1, "maximum": 100],
                    "health_url": ["type": "string", "format": "uri"],
                    "labels": ["type": "object", "additionalProperties": ["type": "string"], "maxProperties": 32],
                    "dry_run": ["type": "boolean", "default": false],
                    "wait": ["type": "boolean", "default": false],
                    "idempotency_key": ["type": "string", "minLength": 1, "maxLength": 255],
                ], required: ["service", "image", "environment"]),
                annotations: .init(destructiveHint: false, idempotentHint: false, openWorldHint: true),
                outputSchema: object([
                    "dry_run": ["type": "boolean"],
                    "valid": ["type": "boolean"],
                    "image_ref": Schemas.imageReference,
                    "deployment": Schemas.deployment,
                    "events": ["type": "array", "items": Schemas.event],
                    "timed_out": ["type": "boolean"],
                ], required: ["dry_run"])
            ),
            Tool(
                name: "cancel_deployment",
                title: "Cancel a deployment",
                description: "Cancel a deployment: a queued one at once, a running one at its next step boundary or wait.",
                inputSchema: object(["id": Schemas.deploymentID], required: ["id"]),
                annotations: .init(destructiveHint: true, idempotentHint: false, openWorldHint: true),
                outputSchema: object(["deployment": Schemas.deployment, "cancelled_now": ["type": "boolean"]], required: ["deployment", "cancelled_now"])
            ),
            Tool(
                name: "get_manifests",
                title: "Get rendered manifests",
                description: "The hardened Compose and Kubernetes manifests the worker rendered for a deployment.",
                inputSchema: object(["id": Schemas.deploymentID], required: ["id"]),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: object([
                    "deployment_id": ["type": "string"], "attempt": ["type": "integer"], "rendered_at": ["type": "string"],
                    "compose": ["type": "string"], "kubernetes": ["type": "string"],
                ], required: ["deployment_id", "compose", "kubernetes"])
            ),
            Tool(
                name: "service_health",
                title: "Service health",
                description: "Readiness of code-api, code-worker and code-mcp, with each readiness check.",
                inputSchema: object([:]),
                annotations: .init(readOnlyHint: true, openWorldHint: false),
                outputSchema: object(["api": Schemas.serviceHealth, "worker": Schemas.serviceHealth, "mcp": Schemas.serviceHealth], required: ["api", "worker", "mcp"])
            ),
        ]
    }()

    /// An object schema that rejects unknown arguments.
    static func object(_ properties: [String: Value], required: [String] = []) -> Value {
        var schema: [String: Value] = ["type": "object", "properties": .object(properties), "additionalProperties": false]
        if !required.isEmpty { schema["required"] = .array(required.map { .string($0) }) }
        return .object(schema)
    }
}

/// JSON Schemas shared by tool definitions.
enum Schemas {
    static let serviceName: Value = ["type": "string", "pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"]
    static let environment: Value = ["type": "string", "enum": .array(DeploymentEnvironment.allCases.map { .string($0.rawValue) })]
    static let deploymentID: Value = ["type": "string", "pattern": "^[A-Za-z0-9_-]{1,100}$"]
    static let imageReference: Value = [
        "type": "object",
        "properties": ["registry": ["type": "string"], "repository": ["type": "string"], "tag": ["type": ["string", "null"]], "digest": ["type": ["string", "null"]]],
    ]
    static let deployment: Value = [
        "type": "object",
        "required": ["id", "service", "image", "environment", "status", "attempt"],
        "properties": [
            "id": ["type": "string"], "service": ["type": "string"], "image": ["type": "string"], "image_ref": imageReference,
            "environment": ["type": "string"], "strategy": ["type": "string"], "replicas": ["type": "integer"],
            "status": ["type": "string"], "attempt": ["type": "integer"], "error": ["type": "string"],
            "created_at": ["type": "string"], "finished_at": ["type": "string"],
        ],
    ]
    static let event: Value = [
        "type": "object",
        "required": ["seq", "step", "kind", "message"],
        "properties": ["seq": ["type": "integer"], "step": ["type": "string"], "kind": ["type": "string"], "outcome": ["type": "string"], "message": ["type": "string"], "at": ["type": "string"]],
    ]
    static let serviceHealth: Value = [
        "type": "object",
        "required": ["status"],
        "properties": ["status": ["type": "string", "enum": ["ready", "not_ready", "unreachable"]], "http_status": ["type": "integer"], "checks": ["type": "array"]],
    ]
}

/// Reads tool arguments into a Decodable input, refusing unknown keys and wrong types with -32602.
enum ToolArguments {
    static func decode<Input: Decodable>(_ type: Input.Type, _ arguments: [String: Value]?, allowed: Set<String>, tool: String) throws -> Input {
        let arguments = arguments ?? [:]
        if let unknown = arguments.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw MCPError.invalidParams("\(tool): unknown argument '\(unknown)'")
        }
        do {
            return try JSONDecoder().decode(Input.self, from: JSONEncoder().encode(arguments))
        } catch let DecodingError.keyNotFound(key, _) {
            throw MCPError.invalidParams("\(tool): missing argument '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw MCPError.invalidParams("\(tool): argument '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw MCPError.invalidParams("\(tool): invalid arguments")
        }
    }

    /// Deployment ids go into URL paths: only their own alphabet, never `/` or `..`.
    static func deploymentID(_ id: String, tool: String) throws -> String {
        guard (1...100).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw MCPError.invalidParams("\(tool): 'id' is not a deployment id")
        }
        return id
    }
}

/// JSON values from the API's Codable types, encoded as the API encodes them.
enum JSONValue {
    static func from(_ value: some Encodable) throws -> Value {
        try JSONDecoder().decode(Value.self, from: CodeJSON.encoder.encode(value))
    }

    static func text(_ value: Value) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }
}
