import CodeAPIContract
import CodeDomain
import CodeRuntime
import CodeStore
import Foundation

/// `/v1/deployments`: create, list, get, cancel, events, manifests, and validation without creating.
extension APIHandlers {
    func createDeployment(_ input: Operations.CreateDeployment.Input) async throws -> Operations.CreateDeployment.Output {
        let key = try Identity.require(.operator)
        let idempotencyKey = try IdempotencyKey.validated(input.headers.idempotencyKey)
        let request =
            switch input.body {
            case .json(let body): DeploymentRequest(body)
            }
        let spec = try checkedSpec(request)
        var new = NewDeployment(
            spec: spec, createdBy: key.id, idempotencyKey: idempotencyKey,
            requestHash: idempotencyKey.map { _ in IdempotencyKey.fingerprint(request) },
            traceParent: TraceParent.current()
        )
        // The audit row goes in with the deployment (one transaction); a replay writes none, so the
        // middleware writes the replay's row as for any other request.
        let pendingAudit = PendingAudit.current
        new.audit = pendingAudit?.entry(status: 201, target: new.id)
        let outcome = try await store.createDeployment(new)
        var replayed: Operations.CreateDeployment.Output.Created.Headers.IdempotentReplayedPayload?
        switch outcome {
        case .created(let deployment):
            pendingAudit?.markWritten()
            metrics.deploymentsCreated(deployment.environment).increment()
            requestLogger.info(
                "deployment created", metadata: ["deployment_id": .string(deployment.id), "service": .string(deployment.service)]
            )
        case .replayed:
            replayed = ._true
        }
        return .created(
            .init(
                headers: .init(location: "/v1/deployments/\(outcome.deployment.id)", idempotentReplayed: replayed),
                body: .json(.init(outcome.deployment))
            )
        )
    }

    func validateDeployment(_ input: Operations.ValidateDeployment.Input) async throws -> Operations.ValidateDeployment.Output {
        try Identity.require(.viewer)
        let spec =
            switch input.body {
            case .json(let body): try checkedSpec(DeploymentRequest(body))
            }
        return .ok(
            .init(body: .json(.init(valid: true, imageRef: .init(spec.image), strategy: .init(spec.strategy), replicas: spec.replicas))))
    }

    func listDeployments(_ input: Operations.ListDeployments.Input) async throws -> Operations.ListDeployments.Output {
        try Identity.require(.viewer)
        var parameters = ListParameters()
        let query = input.query
        if let service = query.service { parameters.check("service", DeploymentSpec.isDNSLabel(service), "must be a DNS label") }
        let limit = parameters.limit(query.limit, default: 20)
        let before = parameters.cursor(query.cursor)
        try parameters.validate()
        let page = try await store.deployments(
            matching: DeploymentFilter(
                status: query.status?.domain, service: query.service, environment: query.environment?.domain, limit: limit, before: before
            )
        )
        return .ok(
            .init(body: .json(.init(items: page.items.map(Components.Schemas.Deployment.init), nextCursor: Cursor.encode(page.next)))))
    }

    func getDeployment(_ input: Operations.GetDeployment.Input) async throws -> Operations.GetDeployment.Output {
        try Identity.require(.viewer)
        return .ok(.init(body: .json(.init(try await existingDeployment(input.path.id)))))
    }

    func cancelDeployment(_ input: Operations.CancelDeployment.Input) async throws -> Operations.CancelDeployment.Output {
        let key = try Identity.require(.operator)
        let id = input.path.id
        do {
            switch try await store.cancelDeployment(id: id, by: key.id, at: Date()) {
            case .cancelled(let deployment):
                return .ok(.init(body: .json(.init(deployment))))
            case .cancelRequested(let deployment):
                // Accepted: the worker stops the deployment at its next step boundary or wait.
                return .accepted(.init(body: .json(.init(deployment))))
            }
        } catch StoreError.notFound {
            throw ServiceError.notFound("Deployment \(id) does not exist.")
        } catch StoreError.conflict(let detail) {
            throw ServiceError.conflict(code: "deployment_finished", "Cannot cancel: \(detail).")
        }
    }

    func listDeploymentEvents(_ input: Operations.ListDeploymentEvents.Input) async throws -> Operations.ListDeploymentEvents.Output {
        try Identity.require(.viewer)
        var parameters = ListParameters()
        if let after = input.query.after { parameters.check("after", after >= 0, "must be a non-negative integer") }
        let limit = parameters.limit(input.query.limit, default: 100)
        try parameters.validate()
        let deployment = try await existingDeployment(input.path.id)
        let page = try await store.events(deploymentID: deployment.id, after: input.query.after, limit: limit)
        return .ok(.init(body: .json(.init(items: page.items.map(Components.Schemas.Event.init), nextAfter: page.next))))
    }

    func getDeploymentManifests(_ input: Operations.GetDeploymentManifests.Input) async throws -> Operations.GetDeploymentManifests.Output {
        try Identity.require(.viewer)
        let deployment = try await existingDeployment(input.path.id)
        guard let manifests = try await store.manifests(deploymentID: deployment.id) else {
            throw ServiceError(
                .notFound, code: "manifests_not_rendered",
                detail: "The worker has not rendered manifests for deployment \(deployment.id) yet."
            )
        }
        return .ok(.init(body: .json(.init(manifests))))
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
                .unprocessableContent, code: "policy_violation", detail: "The deployment violates the deployment policy.",
                violations: violations.map { .init(rule: $0.rule, message: $0.message) }
            )
        }
        return spec
    }

    private func existingDeployment(_ id: String) async throws -> Deployment {
        guard let deployment = try await store.deployment(id: id) else {
            throw ServiceError.notFound("Deployment \(id) does not exist.")
        }
        return deployment
    }
}
