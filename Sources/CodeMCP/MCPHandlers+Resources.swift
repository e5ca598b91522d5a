import CodeAPIContract
import MCP

/// Two resources: the deployment policy, and each deployment with its events.
extension MCPHandlers {
    static let policyURI = "code://policy"
    static let deploymentURIPrefix = "code://deployments/"

    static var resources: [Resource] {
        [
            Resource(
                name: "policy", uri: policyURI, title: "Deployment policy",
                description: "The rules every deployment must satisfy, with their stable ids.",
                mimeType: "application/json"
            )
        ]
    }

    static var resourceTemplates: [Resource.Template] {
        [
            Resource.Template(
                uriTemplate: "code://deployments/{id}", name: "deployment", title: "A deployment",
                description: "A deployment and its events.",
                mimeType: "application/json"
            )
        ]
    }

    func read(_ uri: String, requestID: String?) async throws -> ReadResource.Result {
        let text: String
        do {
            text = try await APIRequestID.$current.withValue(requestID) {
                if uri == Self.policyURI {
                    return try JSONValue.text(try await api.getPolicy().ok.body.json)
                } else if uri.hasPrefix(Self.deploymentURIPrefix) {
                    let id = try ToolArguments.deploymentID(String(uri.dropFirst(Self.deploymentURIPrefix.count)), tool: "resources/read")
                    return try JSONValue.text(try await deploymentWithEvents(id))
                }
                throw MCPError.invalidParams("Unknown resource: \(uri)")
            }
        } catch {
            guard let failure = APIFailure.from(error) else { throw error }
            if failure.status == 404 { throw MCPError.invalidParams("Resource not found: \(uri)") }
            throw MCPError.internalError("code-api: \(failure)")
        }
        return ReadResource.Result(contents: [.text(text, uri: uri, mimeType: "application/json")])
    }
}
