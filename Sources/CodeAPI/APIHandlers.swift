import CodeAPIContract
import CodeDomain
import CodeRuntime
import CodeStore
import Logging

/// The implementation of the API contract's generated `APIProtocol`: one method per operation of
/// openapi/openapi.yaml, grouped by resource in the `APIHandlers+*.swift` files. Authentication and the
/// audit log happen before them (`AccessMiddleware`); each checks the role it needs (`Identity.require`).
/// Problems are thrown as `ServiceError`s, which the runtime answers as problem+json.
struct APIHandlers: APIProtocol {
    let store: any DeploymentRepository & APIKeyRepository & AuditRepository
    /// The access middleware's cache of keys, told when this process revokes one.
    let keyCache: APIKeyCache?
    let policy: DeploymentPolicy
    let metrics: APIMetrics
    /// Outside a request (never, in practice) logs go here; inside one, to the request's logger.
    let logger: Logger

    var requestLogger: Logger { RequestScope.logger(or: logger) }
}
