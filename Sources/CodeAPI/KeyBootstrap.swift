import CodeDomain
import CodeStore
import Logging

/// Guarantees the keys whose secrets come from the environment (compose and Kubernetes secrets): the
/// admin key of `CODE_ADMIN_KEY` and code-mcp's operator key of `CODE_MCP_API_KEY`.
struct KeyBootstrap {
    let settings: APISettings
    let store: any APIKeyRepository
    let logger: Logger

    func ensureConfiguredKeys() async throws {
        let wanted: [(secret: String?, name: String, role: Role)] = [
            (settings.adminKey, "bootstrap-admin", .admin),
            (settings.mcpKey, "code-mcp", .operator),
        ]
        for (secret, name, role) in wanted {
            guard let secret else { continue }
            let key = try await store.ensureKey(
                NewAPIKey(
                    name: name, role: role, prefix: APIKeySecret.prefix(of: secret), secretHash: APIKeySecret.hash(secret), createdBy: nil)
            )
            if key.revokedAt != nil {
                logger.warning(
                    "the configured key was revoked and stays revoked", metadata: ["key_id": .string(key.id), "name": .string(name)])
            } else {
                logger.info(
                    "configured key is present",
                    metadata: ["key_id": .string(key.id), "name": .string(key.name), "role": .string(key.role.rawValue)]
                )
            }
        }
    }
}
