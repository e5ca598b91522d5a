import CodeDomain

// The domain's values as the contract's generated types (openapi/openapi.yaml, generated into this
// module by swift-openapi-generator; see openapi-generator-config.yaml). Every field is named here, and
// the enums are switched over exhaustively both ways, so a change to the contract that these do not
// follow breaks the build here.

extension Components.Schemas.Deployment {
    public init(_ deployment: Deployment) {
        self.init(
            id: deployment.id,
            service: deployment.service,
            image: deployment.image,
            imageRef: .init(deployment.imageRef),
            environment: .init(deployment.environment),
            strategy: .init(deployment.strategy),
            replicas: deployment.replicas,
            healthUrl: deployment.healthURL,
            labels: .init(additionalProperties: deployment.labels),
            status: .init(deployment.status),
            attempt: deployment.attempt,
            error: deployment.error,
            cancelRequested: deployment.cancelRequested,
            leaseOwner: deployment.leaseOwner,
            leaseExpiresAt: deployment.leaseExpiresAt,
            createdBy: deployment.createdBy,
            createdAt: deployment.createdAt,
            updatedAt: deployment.updatedAt,
            startedAt: deployment.startedAt,
            finishedAt: deployment.finishedAt
        )
    }
}

extension Components.Schemas.ImageReference {
    public init(_ reference: ImageReference) {
        self.init(registry: reference.registry, repository: reference.repository, tag: reference.tag, digest: reference.digest)
    }
}

extension Components.Schemas.Event {
    public init(_ event: DeploymentEvent) {
        self.init(
            seq: event.sequence,
            deploymentId: event.deploymentID,
            at: event.at,
            attempt: event.attempt,
            workerId: event.workerID,
            step: event.step,
            kind: .init(event.kind),
            outcome: event.outcome.map(OutcomePayload.init),
            durationMs: event.durationMs,
            message: event.message
        )
    }
}

extension Components.Schemas.Event.KindPayload {
    public init(_ kind: DeploymentEvent.Kind) {
        switch kind {
        case .started: self = .started
        case .finished: self = .finished
        case .info: self = .info
        }
    }
}

extension Components.Schemas.Event.OutcomePayload {
    public init(_ outcome: DeploymentEvent.Outcome) {
        switch outcome {
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        case .skipped: self = .skipped
        }
    }
}

extension Components.Schemas.Manifests {
    public init(_ manifests: DeploymentManifests) {
        self.init(
            deploymentId: manifests.deploymentID, attempt: manifests.attempt, renderedAt: manifests.renderedAt,
            compose: manifests.compose, kubernetes: manifests.kubernetes
        )
    }
}

extension Components.Schemas.Key {
    public init(_ key: APIKey) {
        self.init(
            id: key.id, name: key.name, role: .init(key.role), prefix: key.prefix, createdAt: key.createdAt,
            createdBy: key.createdBy, lastUsedAt: key.lastUsedAt, revokedAt: key.revokedAt
        )
    }
}

extension Components.Schemas.AuditEntry {
    /// An outcome the contract does not know means the stored row is not one this API wrote.
    public struct UnknownOutcome: Error, CustomStringConvertible {
        public let outcome: String
        public var description: String { "audit entry with an unknown outcome '\(outcome)'" }
    }

    public init(_ entry: CodeDomain.AuditEntry) throws {
        guard let outcome = OutcomePayload(rawValue: entry.outcome) else { throw UnknownOutcome(outcome: entry.outcome) }
        self.init(
            seq: entry.sequence, at: entry.at, keyId: entry.keyID, action: entry.action, target: entry.target,
            outcome: outcome, status: entry.status, requestId: entry.requestID, method: entry.method, path: entry.path,
            client: entry.client
        )
    }
}

extension Components.Schemas.Environment {
    public init(_ environment: DeploymentEnvironment) {
        switch environment {
        case .development: self = .development
        case .staging: self = .staging
        case .production: self = .production
        }
    }

    public var domain: DeploymentEnvironment {
        switch self {
        case .development: .development
        case .staging: .staging
        case .production: .production
        }
    }
}

extension Components.Schemas.Strategy {
    public init(_ strategy: DeploymentStrategy) {
        switch strategy {
        case .rolling: self = .rolling
        case .recreate: self = .recreate
        case .blueGreen: self = .blueGreen
        case .canary: self = .canary
        }
    }
}

extension Components.Schemas.DeploymentStatus {
    public init(_ status: CodeDomain.DeploymentStatus) {
        switch status {
        case .queued: self = .queued
        case .running: self = .running
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .cancelled: self = .cancelled
        }
    }

    public var domain: CodeDomain.DeploymentStatus {
        switch self {
        case .queued: .queued
        case .running: .running
        case .succeeded: .succeeded
        case .failed: .failed
        case .cancelled: .cancelled
        }
    }
}

extension Components.Schemas.Role {
    public init(_ role: Role) {
        switch role {
        case .viewer: self = .viewer
        case .operator: self = ._operator
        case .admin: self = .admin
        }
    }

    public var domain: Role {
        switch self {
        case .viewer: .viewer
        case ._operator: .operator
        case .admin: .admin
        }
    }
}

extension CodeDomain.DeploymentRequest {
    /// The contract's request as the domain validates it (strings, so that every field is checked).
    public init(_ request: Components.Schemas.DeploymentRequest) {
        self.init(
            service: request.service, image: request.image, environment: request.environment.rawValue,
            strategy: request.strategy?.rawValue, replicas: request.replicas, healthURL: request.healthUrl,
            labels: request.labels?.additionalProperties
        )
    }
}
