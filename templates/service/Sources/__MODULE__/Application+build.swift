import CodeRuntime
import Hummingbird

/// Builds __NAME__: the shared runtime's router (request ids, problem+json errors, metrics, access log,
/// `/health`, `/health/live`, `/health/ready`) with this service's routes. `main` and the tests both call
/// this.
public func buildApplication(settings: __STEM__Settings, runtime: ServiceRuntime) async throws -> some ApplicationProtocol {
    // Readiness checks of what this service depends on go here, e.g.
    // runtime.health.register("database", timeout: .seconds(2)) { try await store.ping() }
    if settings.authTokens.isEmpty {
        runtime.logger.warning("AUTH_TOKENS is not set: every /v1 request is refused with 401")
    }
    let router = runtime.makeRouter()
    let v1 = router.group("/v1").add(middleware: BearerTokenMiddleware(tokens: BearerTokens(settings.authTokens)))
    GreetingRoutes().add(to: v1)
    return runtime.makeApplication(router: router)
}
