import CodeDomain
import CodeRuntime
import CodeStore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// `/v1/deployments`: create, list, get, cancel, events, manifests, and validation without creating.
struct DeploymentRoutes {
    let store: any DeploymentRepository
    let policy: DeploymentPolicy
    let metrics: APIMetrics

    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!
    static let replayedHeader = HTTPField.Name("Idempotent-Replayed")!
    static let maximumIdempotencyKeyLength = 255

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("/deployments", use: create)
        group.get("/deployments", use: list)
        group.post("/deployments/validate", use: validate)
        group.get("/deployments/{id}", use: get)
        group.post("/deployments/{id}/cancel", use: cancel)
        group.get("/deployments/{id}/events", use: events)
        group.get("/deployments/{id}/manifests", use: manifests)
    }

    /// Validation and policy of a request body; the deployment spec, or a 422 naming every problem.
    func checkedSpec(_ request: DeploymentRequest) throws -> DeploymentSpec {
        let spec: DeploymentSpec
        switch DeploymentSpec.validate(request) {
        case .success(let valid): spec = valid
        case .failure(let failure):
            throw ServiceError.validation(failure.violations.map { .init(field: $0.field, message: $0.message) })
        }
        let violations = policy.evaluate(spec)
        guard violations.isEmpty else {
            throw ServiceError(
                .unprocessableContent, code: "policy_violation",
                detail: "The deployment violates the deployment policy.",
                violations: violations.map { .init(rule: $0.rule, message: $0.message) }
            )
        }
        return spec
    }

    @Sendable func create(_ request: Request, context: APIRequestContext) async throws -> Response {
        let key = try context.require(.operator)
        let idempotencyKey = try Self.idempotencyKey(request)
        let body = try await JSONBody.decode(DeploymentRequest.self, from: request)
        let spec = try checkedSpec(body)
        let outcome = try await store.createDeployment(NewDeployment(
            spec: spec, createdBy: key.id, idempotencyKey: idempotencyKey,
            requestHash: idempotencyKey.map { _ in Self.fingerprint(body) }
        ))
        var headers: HTTPFields = [.location: "/v1/deployments/\(outcome.deployment.id)"]
        switch outcome {
        case .created(let deployment):
            metrics.deploymentsCreated(deployment.environment).increment()
            context.logger.info("deployment created", metadata: ["deployment_id": .string(deployment.id), "service": .string(deployment.service)])
        case .replayed:
            headers[Self.replayedHeader] = "true"
        }
        return try jsonResponse(outcome.deployment, status: .created, headers: headers)
    }

    @Sendable func validate(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.viewer)
        let spec = try checkedSpec(try await JSONBody.decode(DeploymentRequest.self, from: request))
        return try jsonResponse(ValidationResult(valid: true, imageRef: spec.image, strategy: spec.strategy, replicas: spec.replicas))
    }

    @Sendable func list(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.viewer)
        var query = QueryParameters(request)
        let status = query.choice("status", as: DeploymentStatus.self)
        let environment = query.choice("environment", as: DeploymentEnvironment.self)
        let service = query.string("service")
        if let service { query.check("service", DeploymentSpec.isDNSLabel(service), "must be a DNS label") }
        let limit = query.limit(default: 20)
        let before = query.cursor()
        try query.validate()
        let page = try await store.deployments(matching: DeploymentFilter(status: status, service: service, environment: environment, limit: limit, before: before))
        return try jsonResponse(Page(items: page.items, nextCursor: Cursor.encode(page.next)))
    }

    @Sendable func get(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.viewer)
        return try jsonResponse(try await existing(context))
    }

    @Sendable func cancel(_ request: Request, context: APIRequestContext) async throws -> Response {
        let key = try context.require(.operator)
        let id = try context.parameters.require("id")
        do {
            switch try await store.cancelDeployment(id: id, by: key.id, at: Date()) {
            case .cancelled(let deployment):
                return try jsonResponse(deployment)
            case .cancelRequested(let deployment):
                // Accepted: the worker stops the deployment at its next step boundary or wait.
                return try jsonResponse(deployment, status: .accepted)
            }
        } catch StoreError.notFound {
            throw ServiceError.notFound("Deployment \(id) does not exist.")
        } catch StoreError.conflict(let detail) {
            throw ServiceError.conflict(code: "deployment_finished", "Cannot cancel: \(detail).")
        }
    }

    @Sendable func events(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.viewer)
        var query = QueryParameters(request)
        let after = query.nonNegativeInteger("after")
        let limit = query.limit(default: 100)
        try query.validate()
        let deployment = try await existing(context)
        let page = try await store.events(deploymentID: deployment.id, after: after, limit: limit)
        return try jsonResponse(EventPage(items: page.items, nextAfter: page.next))
    }

    @Sendable func manifests(_ request: Request, context: APIRequestContext) async throws -> Response {
        try context.require(.viewer)
        let deployment = try await existing(context)
        guard let manifests = try await store.manifests(deploymentID: deployment.id) else {
            throw ServiceError(.notFound, code: "manifests_not_rendered", detail: "The worker has not rendered manifests for deployment \(deployment.id) yet.")
        }
        return try jsonResponse(manifests)
    }

    private func existing(_ context: APIRequestContext) async throws -> Deployment {
        let id = try context.parameters.require("id")
        guard let deployment = try await store.deployment(id: id) else {
            throw ServiceError.notFound("Deployment \(id) does not exist.")
        }
        return deployment
    }

    /// `Idempotency-Key`: 1-255 visible ASCII characters, or absent.
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let value = request.headers[idempotencyKeyHeader] else { return nil }
        guard (1...maximumIdempotencyKeyLength).contains(value.utf8.count), value.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw ServiceError.badRequest(code: "invalid_idempotency_key", "Idempotency-Key must be 1-\(maximumIdempotencyKeyLength) visible ASCII characters.")
        }
        return value
    }

    /// What makes two requests "the same" for idempotency: the decoded body, not its bytes, so key order
    /// and whitespace do not matter.
    static func fingerprint(_ body: DeploymentRequest) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(body)) ?? Data()
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
