import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import Hummingbird
import Logging

/// Builds code-api: the store, the router with its middleware, the services it runs. `main` and the tests
/// both call this.
public func buildApplication(settings: APISettings, runtime: ServiceRuntime) async throws -> some ApplicationProtocol {
    let handle = try StoreHandle.open(
        settings.database, password: settings.databasePassword, logger: runtime.logger, metricsFactory: runtime.metrics.factory
    )
    let store = handle.store
    runtime.health.register("database", timeout: .seconds(2)) { try await store.ping() }

    let router = runtime.makeRouter(context: APIRequestContext.self)
    router.get("/openapi.yaml") { _, _ in
        Response(
            status: .ok,
            headers: [.contentType: "application/yaml; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.yaml))
        )
    }
    let metrics = APIMetrics(factory: runtime.metrics.factory)
    let v1 = router.group("/v1").add(middleware: AccessMiddleware(store: store, metrics: metrics))
    DeploymentRoutes(store: store, policy: settings.policy, metrics: metrics).add(to: v1)
    AdminRoutes(store: store, policy: settings.policy).add(to: v1)

    var app = runtime.makeApplication(router: router, services: handle.services)
    app.beforeServerStarts {
        // PostgreSQL's pool runs as a service by now; SQLite needs nothing running.
        try await store.migrate()
        try await bootstrapKeys(settings, store: store, logger: runtime.logger)
    }
    return app
}

/// Guarantees the keys whose secrets come from the environment (compose and Kubernetes secrets).
func bootstrapKeys(_ settings: APISettings, store: any APIKeyRepository, logger: Logger) async throws {
    let wanted: [(secret: String?, name: String, role: Role)] = [
        (settings.adminKey, "bootstrap-admin", .admin),
        (settings.mcpKey, "code-mcp", .operator),
    ]
    for (secret, name, role) in wanted {
        guard let secret else { continue }
        let key = try await store.ensureKey(NewAPIKey(
            name: name, role: role, prefix: APIKeySecret.prefix(of: secret), secretHash: APIKeySecret.hash(secret), createdBy: nil
        ))
        if key.revokedAt != nil {
            logger.warning("the configured key was revoked and stays revoked", metadata: ["key_id": .string(key.id), "name": .string(name)])
        } else {
            logger.info("configured key is present", metadata: ["key_id": .string(key.id), "name": .string(key.name), "role": .string(key.role.rawValue)])
        }
    }
}
