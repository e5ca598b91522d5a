import CodeDomain
import Foundation

// Rows of `deployments` and `deployment_manifests` as the database stores them, and their mapping to
// domain values. Both backends read these records by their `CodingKeys`, through one `init(columns:)` each
// (RecordColumns.swift). So the mapping to domain values is written once, and every statement that reads a
// record selects its `columns`.

/// A row of `deployments`.
struct DeploymentRecord: Sendable {
    var seq: Int64
    var id: String
    var service: String
    var image: String
    var imageRegistry: String
    var imageRepository: String
    var imageTag: String?
    var imageDigest: String?
    var environment: String
    var strategy: String
    var replicas: Int64
    var healthURL: String?
    var labels: String
    var status: String
    var attempt: Int64
    var error: String?
    var cancelRequested: Int64
    var leaseOwner: String?
    var leaseExpiresAt: Int64?
    var createdBy: String?
    var idempotencyKey: String?
    var requestHash: String?
    var createdAt: Int64
    var updatedAt: Int64
    var startedAt: Int64?
    var finishedAt: Int64?
    var failures: Int64
    var releases: Int64
    var traceParent: String?

    /// The column names.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case seq, id, service, image
        case imageRegistry = "image_registry"
        case imageRepository = "image_repository"
        case imageTag = "image_tag"
        case imageDigest = "image_digest"
        case environment, strategy, replicas
        case healthURL = "health_url"
        case labels, status, attempt, error
        case cancelRequested = "cancel_requested"
        case leaseOwner = "lease_owner"
        case leaseExpiresAt = "lease_expires_at"
        case createdBy = "created_by"
        case idempotencyKey = "idempotency_key"
        case requestHash = "request_hash"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case failures, releases
        case traceParent = "trace_parent"
    }

    /// What every statement that reads deployments selects (or returns).
    static let columns = CodingKeys.columnList

    func deployment() throws -> Deployment {
        Deployment(
            id: id,
            service: service,
            image: image,
            imageRef: ImageReference(registry: imageRegistry, repository: imageRepository, tag: imageTag, digest: imageDigest),
            environment: try .init(stored: environment, column: "environment"),
            strategy: try .init(stored: strategy, column: "strategy"),
            replicas: Int(replicas),
            healthURL: healthURL,
            labels: try StoredLabels.decode(labels),
            status: try .init(stored: status, column: "status"),
            attempt: Int(attempt),
            error: error,
            cancelRequested: cancelRequested != 0,
            leaseOwner: leaseOwner,
            leaseExpiresAt: leaseExpiresAt.map(Date.init(millisecondsSinceEpoch:)),
            createdBy: createdBy,
            createdAt: Date(millisecondsSinceEpoch: createdAt),
            updatedAt: Date(millisecondsSinceEpoch: updatedAt),
            startedAt: startedAt.map(Date.init(millisecondsSinceEpoch:)),
            finishedAt: finishedAt.map(Date.init(millisecondsSinceEpoch:))
        )
    }

    /// The answer to a create whose idempotency key this deployment already holds: the same request gets
    /// the deployment back, a different one (another request hash) a conflict.
    func replay(of new: NewDeployment) throws -> CreateOutcome {
        guard requestHash == new.requestHash else { throw StoreError.idempotencyMismatch(existingID: id) }
        return .replayed(try deployment())
    }
}

/// A row of `deployment_manifests`.
struct ManifestRecord: Sendable {
    var deploymentID: String
    var attempt: Int64
    var renderedAt: Int64
    var compose: String
    var kubernetes: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case deploymentID = "deployment_id"
        case attempt
        case renderedAt = "rendered_at"
        case compose, kubernetes
    }

    static let columns = CodingKeys.columnList

    var manifests: DeploymentManifests {
        DeploymentManifests(
            deploymentID: deploymentID, attempt: Int(attempt), renderedAt: Date(millisecondsSinceEpoch: renderedAt),
            compose: compose, kubernetes: kubernetes
        )
    }
}

/// A new deployment in stored form. It is inserted queued, at attempt 0, with `updated_at = created_at`.
struct DeploymentInsert: Sendable {
    var id: String
    var service: String
    var image: String
    var imageRegistry: String
    var imageRepository: String
    var imageTag: String?
    var imageDigest: String?
    var environment: String
    var strategy: String
    var replicas: Int64
    var healthURL: String?
    var labels: String
    var createdBy: String?
    var idempotencyKey: String?
    var requestHash: String?
    var createdAt: Int64
    var traceParent: String?

    init(_ new: NewDeployment) throws {
        let spec = new.spec
        id = new.id
        service = spec.service
        image = spec.imageText
        imageRegistry = spec.image.registry
        imageRepository = spec.image.repository
        imageTag = spec.image.tag
        imageDigest = spec.image.digest
        environment = spec.environment.rawValue
        strategy = spec.strategy.rawValue
        replicas = Int64(spec.replicas)
        healthURL = spec.healthURL
        labels = try StoredLabels.encode(spec.labels)
        createdBy = new.createdBy
        idempotencyKey = new.idempotencyKey
        requestHash = new.requestHash
        createdAt = new.createdAt.millisecondsSinceEpoch
        traceParent = new.traceParent
    }
}

/// The columns of a running deployment whose lease expired after its last allowed attempt: what its
/// final event needs.
struct ExhaustedLeaseRecord: Sendable {
    var id: String
    var attempt: Int64
    var failures: Int64
    var leaseOwner: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, attempt, failures
        case leaseOwner = "lease_owner"
    }

    static let columns = CodingKeys.columnList
}

/// The columns of a deployment the store ended as cancelled when a worker claimed or released it.
struct CancelledRecord: Sendable {
    var id: String
    var attempt: Int64

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, attempt
    }

    static let columns = CodingKeys.columnList
}

extension DeploymentRecord {
    /// The claim a worker gets for this (just claimed) row.
    func claim(by worker: String) throws -> Claim {
        Claim(
            deployment: try deployment(), owner: worker, failures: Int(failures), releases: Int(releases), traceParent: traceParent)
    }
}
