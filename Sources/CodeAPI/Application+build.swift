import CodeAPIContract
import CodeConfiguration
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import Hummingbird
import Logging
import OpenAPIHummingbird
import OpenAPIRuntime
import ServiceLifecycle

/// Builds code-api: the store, the router with the handlers of the contract (generated from
/// openapi/openapi.yaml), their middleware, and the services it runs. `main` and the tests both call this.
public func buildApplication(settings: APISettings, runtime: ServiceRuntime) async throws -> some ApplicationProtocol {
    guard settings.keyCacheLifetime >= .zero, settings.keyCacheLifetime <= APIKeyCache.longestLifetime else {
        throw ConfigurationError("CODE_KEY_CACHE_SECONDS", "must be from 0 to 1 (seconds)")
    }
    let handle = try StoreHandle.open(
        settings.database, password: settings.databasePassword, logger: runtime.logger, metricsFactory: runtime.metrics.factory
    )
    let store = handle.store
    runtime.health.register("database", timeout: .seconds(2)) { try await store.ping() }

    let router = runtime.makeRouter()
    let document = try ContractDocument.yaml()
    router.get("/openapi.yaml") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: document)))
    }
    // Bodies are read within their limit before the generated code decodes them.
    router.add(middleware: RequestBodyLimitMiddleware())
    let metrics = APIMetrics(factory: runtime.metrics.factory)
    let keyCache = settings.keyCacheLifetime > .zero ? APIKeyCache(lifetime: settings.keyCacheLifetime) : nil
    let handlers = APIHandlers(store: store, keyCache: keyCache, policy: settings.policy, metrics: metrics, logger: runtime.logger)
    try handlers.registerHandlers(
        on: router,
        configuration: .contract,
        middlewares: [
            AccessMiddleware(store: store, keyCache: keyCache, metrics: metrics, logger: runtime.logger, refusalLog: SampledLog()),
            DeploymentRequestDiagnosis(),
            LocationHeaderDecoding(),
        ]
    )

    var app = runtime.makeApplication(router: router, services: handle.services)
    app.beforeServerStarts {
        // PostgreSQL's pool runs as a service by now; SQLite needs nothing running. While the database
        // cannot be reached the pool keeps trying; a SIGTERM then (an orchestrator stopping a task that
        // never became ready) stops the wait and the process exits 0, as after any graceful shutdown.
        do {
            try await cancelWhenGracefulShutdown {
                try await store.migrate()
                try await KeyBootstrap(settings: settings, store: store, logger: runtime.logger).ensureConfiguredKeys()
            }
        } catch  where Task.isShuttingDownGracefully && !error.hasOwnExitCode {
            // (A database migrated by a newer version still ends the process with its own exit code.)
            runtime.logger.info("stopped before start-up finished (migrations and keys)", metadata: ["error": .string("\(error)")])
        }
    }
    return app
}
