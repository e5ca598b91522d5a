import AsyncHTTPClient
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import Hummingbird
import Logging

/// Builds code-worker: the claim loop, its store, and the HTTP side (health, readiness, `/v1/worker`).
/// `main` and the tests both call this.
public func buildApplication(settings: WorkerSettings, runtime: ServiceRuntime) async throws -> some ApplicationProtocol {
    let handle = try StoreHandle.open(
        settings.database, password: settings.databasePassword, logger: runtime.logger, metricsFactory: runtime.metrics.factory
    )
    let store = handle.store
    let loop = ClaimLoop(
        settings: settings, store: store, postgres: store as? PostgresStore,
        metrics: WorkerMetrics(factory: runtime.metrics.factory), logger: runtime.logger, httpClient: .shared
    )
    runtime.health.register("database", timeout: .seconds(2)) { try await store.ping() }
    runtime.health.register("claim-loop", timeout: .seconds(1)) {
        guard loop.isAlive else { throw ClaimLoopNotRunning() }
    }

    let router = runtime.makeRouter()
    router.group("/v1").add(middleware: OperatorKeyMiddleware(keys: store)).get("/worker") { _, _ -> Response in
        let body = try CodeJSON.encoder.encode(loop.status())
        return Response(
            status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    // The loop migrates the database before its first claim (code-api does too; migrations are
    // idempotent and serialized), so the worker can start first.
    let app = runtime.makeApplication(router: router, services: handle.services + [loop])
    return app
}

struct ClaimLoopNotRunning: Error, CustomStringConvertible {
    var description: String { "the claim loop is not running" }
}

/// Requires an operator (or admin) key, checked against the same store as code-api.
struct OperatorKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: any APIKeyRepository

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch try await BearerAuthentication.authenticate(authorization: request.headers[.authorization], keys: keys) {
        case .failure(let failure):
            throw ServiceError.unauthorized(
                failure == .missing ? "Send an API key as 'Authorization: Bearer <key>'." : "The API key is not valid.")
        case .success(let key) where !key.role.allows(.operator):
            throw ServiceError.forbidden("This needs the operator role; the key has \(key.role.rawValue).")
        case .success:
            return try await next(request, context)
        }
    }
}
