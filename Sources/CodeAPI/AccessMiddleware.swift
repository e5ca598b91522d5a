import CodeDomain
import CodeRuntime
import CodeStore
import Foundation
import Hummingbird
import Logging
import Metrics

/// Authentication and the audit log, for every route under `/v1`.
///
/// Authenticates `Authorization: Bearer <key>` against the store on every request, so a revoked key stops
/// working at once on every replica. Roles are checked by each handler (`context.require(_:)`), next to
/// what it does. Every mutating request (anything but GET and HEAD) is recorded in the audit log with its
/// outcome, including requests refused for a missing or wrong key.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    let store: any APIKeyRepository & AuditRepository
    let metrics: APIMetrics
    /// `last_used_at` is written at most this often per key, so reads do not turn into writes.
    static let lastUsedResolution: TimeInterval = 60

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let isMutating = request.method != .get && request.method != .head
        var context = context
        switch try await BearerAuthentication.authenticate(authorization: request.headers[.authorization], keys: store) {
        case .failure(let failure):
            metrics.authFailures(failure.rawValue).increment()
            let error = ServiceError.unauthorized(
                failure == .missing ? "Send an API key as 'Authorization: Bearer <key>'." : "The API key is not valid."
            )
            if isMutating { await audit(request, context: context, key: nil, status: error.status.code, location: nil) }
            throw error
        case .success(let key):
            context.identity = key
            await recordUse(of: key, logger: context.logger)
            do {
                let response = try await next(request, context)
                if isMutating {
                    await audit(request, context: context, key: key, status: response.status.code, location: response.headers[.location])
                }
                return response
            } catch {
                let status = ServiceError.from(error).status.code
                if status == 403 { metrics.authFailures("forbidden").increment() }
                if isMutating { await audit(request, context: context, key: key, status: status, location: nil) }
                throw error
            }
        }
    }

    private func recordUse(of key: APIKey, logger: Logger) async {
        let now = Date()
        if let last = key.lastUsedAt, now.timeIntervalSince(last) < Self.lastUsedResolution { return }
        do {
            try await store.recordKeyUse(id: key.id, at: now)
        } catch {
            logger.warning("could not record key use", metadata: ["key_id": .string(key.id), "error": .string("\(error)")])
        }
    }

    private func audit(_ request: Request, context: Context, key: APIKey?, status: Int, location: String?) async {
        let path = request.uri.path
        let action = AuditAction.resolve(method: request.method.rawValue, path: path)
        let outcome: String
        switch status {
        case 200..<400: outcome = "succeeded"
        case 401: outcome = "unauthenticated"
        case 403: outcome = "denied"
        default: outcome = "failed"
        }
        let target = action.target ?? location.map { String($0.split(separator: "/").last ?? "") }
        do {
            try await store.recordAudit(NewAuditEntry(
                at: Date(), keyID: key?.id, action: action.name, target: target, outcome: outcome, status: status,
                requestID: context.requestID, method: request.method.rawValue, path: path
            ))
        } catch {
            // The change itself happened (or was refused); losing its audit line is reported, not hidden.
            context.logger.error("could not write the audit log", metadata: ["action": .string(action.name), "error": .string("\(error)")])
        }
    }
}

/// Names of audited actions, from the method and the path.
enum AuditAction {
    struct Resolved: Equatable {
        let name: String
        /// The `{id}` of the path, when the route has one.
        let target: String?
    }

    static let routes: [(method: String, template: [String], name: String)] = [
        ("POST", ["v1", "deployments"], "deployment.create"),
        ("POST", ["v1", "deployments", "validate"], "deployment.validate"),
        ("POST", ["v1", "deployments", "{id}", "cancel"], "deployment.cancel"),
        ("POST", ["v1", "keys"], "key.create"),
        ("DELETE", ["v1", "keys", "{id}"], "key.revoke"),
    ]

    static func resolve(method: String, path: String) -> Resolved {
        let segments = path.split(separator: "/").map(String.init)
        for route in routes where route.method == method && route.template.count == segments.count {
            var target: String?
            let matches = zip(route.template, segments).allSatisfy { template, segment in
                if template == "{id}" {
                    target = segment
                    return true
                }
                return template == segment
            }
            if matches { return Resolved(name: route.name, target: target) }
        }
        return Resolved(name: "\(method) \(path)", target: nil)
    }
}

/// Metrics of code-api beyond the runtime's HTTP metrics.
struct APIMetrics: Sendable {
    let factory: any MetricsFactory

    /// `code_deployments_created_total{environment}`
    func deploymentsCreated(_ environment: DeploymentEnvironment) -> Counter {
        Counter(label: "code_deployments_created_total", dimensions: [("environment", environment.rawValue)], factory: factory)
    }

    /// `code_auth_failures_total{reason}`: missing, malformed, unknown, revoked, forbidden.
    func authFailures(_ reason: String) -> Counter {
        Counter(label: "code_auth_failures_total", dimensions: [("reason", reason)], factory: factory)
    }
}
