import Foundation

/// The JSON resources of the public API. code-api encodes them, code-mcp decodes them, the store fills
/// them: one definition keeps the three in step with `openapi.yaml`.

public struct Deployment: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    public var service: String
    public var image: String
    public var imageRef: ImageReference
    public var environment: DeploymentEnvironment
    public var strategy: DeploymentStrategy
    public var replicas: Int
    public var healthURL: String?
    public var labels: [String: String]
    public var status: DeploymentStatus
    /// How many times a worker has claimed it; more than 1 means a worker took over from another.
    public var attempt: Int
    public var error: String?
    public var cancelRequested: Bool
    public var leaseOwner: String?
    public var leaseExpiresAt: Date?
    public var createdBy: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, service, image, environment, strategy, replicas, labels, status, attempt, error
        case imageRef = "image_ref"
        case healthURL = "health_url"
        case cancelRequested = "cancel_requested"
        case leaseOwner = "lease_owner"
        case leaseExpiresAt = "lease_expires_at"
        case createdBy = "created_by"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
    }

    public init(
        id: String, service: String, image: String, imageRef: ImageReference, environment: DeploymentEnvironment,
        strategy: DeploymentStrategy, replicas: Int, healthURL: String?, labels: [String: String],
        status: DeploymentStatus, attempt: Int, error: String?, cancelRequested: Bool, leaseOwner: String?,
        leaseExpiresAt: Date?, createdBy: String?, createdAt: Date, updatedAt: Date, startedAt: Date?, finishedAt: Date?
    ) {
        self.id = id
        self.service = service
        self.image = image
        self.imageRef = imageRef
        self.environment = environment
        self.strategy = strategy
        self.replicas = replicas
        self.healthURL = healthURL
        self.labels = labels
        self.status = status
        self.attempt = attempt
        self.error = error
        self.cancelRequested = cancelRequested
        self.leaseOwner = leaseOwner
        self.leaseExpiresAt = leaseExpiresAt
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// The validated specification this deployment was created from.
    public var spec: DeploymentSpec {
        DeploymentSpec(
            service: service, image: imageRef, imageText: image, environment: environment, strategy: strategy,
            replicas: replicas, healthURL: healthURL, labels: labels
        )
    }
}

/// One step of a deployment's story, written by the worker (and by the API for cancellation).
public struct DeploymentEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case started, finished, info
    }

    public enum Outcome: String, Codable, Sendable, CaseIterable {
        case succeeded, failed, cancelled, skipped
    }

    /// Position in the deployment's event list; `after` cursors refer to it.
    public var sequence: Int64
    public var deploymentID: String
    public var at: Date
    public var attempt: Int
    public var workerID: String?
    public var step: String
    public var kind: Kind
    public var outcome: Outcome?
    public var durationMs: Int64?
    public var message: String

    enum CodingKeys: String, CodingKey {
        case at, attempt, step, kind, outcome, message
        case sequence = "seq"
        case deploymentID = "deployment_id"
        case workerID = "worker_id"
        case durationMs = "duration_ms"
    }

    public init(
        sequence: Int64, deploymentID: String, at: Date, attempt: Int, workerID: String?, step: String,
        kind: Kind, outcome: Outcome?, durationMs: Int64?, message: String
    ) {
        self.sequence = sequence
        self.deploymentID = deploymentID
        self.at = at
        self.attempt = attempt
        self.workerID = workerID
        self.step = step
        self.kind = kind
        self.outcome = outcome
        self.durationMs = durationMs
        self.message = message
    }
}

/// The hardened manifests the worker renders for a deployment.
public struct DeploymentManifests: Codable, Sendable, Equatable {
    public var deploymentID: String
    public var attempt: Int
    public var renderedAt: Date
    /// A Compose file with one service.
    public var compose: String
    /// Kubernetes `Deployment` and `Service`, as one multi-document YAML stream.
    public var kubernetes: String

    enum CodingKeys: String, CodingKey {
        case attempt, compose, kubernetes
        case deploymentID = "deployment_id"
        case renderedAt = "rendered_at"
    }

    public init(deploymentID: String, attempt: Int, renderedAt: Date, compose: String, kubernetes: String) {
        self.deploymentID = deploymentID
        self.attempt = attempt
        self.renderedAt = renderedAt
        self.compose = compose
        self.kubernetes = kubernetes
    }
}

public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    /// Reads deployments, their events and manifests.
    case viewer
    /// Also creates and cancels deployments.
    case `operator`
    /// Everything, including API keys and the audit log.
    case admin

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .operator: 1
        case .admin: 2
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    public func allows(_ required: Role) -> Bool { self >= required }
}

/// An API key as listed: never the secret, never its hash.
public struct APIKey: Codable, Sendable, Equatable, Identifiable {
    public var id: String
    public var name: String
    public var role: Role
    /// The first characters of the secret, to tell keys apart.
    public var prefix: String
    public var createdAt: Date
    public var createdBy: String?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, name, role, prefix
        case createdAt = "created_at"
        case createdBy = "created_by"
        case lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }

    public init(id: String, name: String, role: Role, prefix: String, createdAt: Date, createdBy: String?, lastUsedAt: Date?, revokedAt: Date?) {
        self.id = id
        self.name = name
        self.role = role
        self.prefix = prefix
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// One mutating request, as the audit log keeps it.
public struct AuditEntry: Codable, Sendable, Equatable {
    public var sequence: Int64
    public var at: Date
    public var keyID: String?
    public var action: String
    public var target: String?
    /// `succeeded`, `failed`, `denied` (403) or `unauthenticated` (401).
    public var outcome: String
    public var status: Int
    public var requestID: String?
    public var method: String
    public var path: String

    enum CodingKeys: String, CodingKey {
        case at, action, target, outcome, status, method, path
        case sequence = "seq"
        case keyID = "key_id"
        case requestID = "request_id"
    }

    public init(
        sequence: Int64, at: Date, keyID: String?, action: String, target: String?, outcome: String, status: Int,
        requestID: String?, method: String, path: String
    ) {
        self.sequence = sequence
        self.at = at
        self.keyID = keyID
        self.action = action
        self.target = target
        self.outcome = outcome
        self.status = status
        self.requestID = requestID
        self.method = method
        self.path = path
    }
}

/// A page of a list endpoint. `next_cursor` is opaque; absent on the last page.
public struct Page<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case items
        case nextCursor = "next_cursor"
    }

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }
}

/// A page of a deployment's events. `next_after` (always present, null at the end) is the `after` to
/// read on with.
public struct EventPage: Codable, Sendable {
    public var items: [DeploymentEvent]
    public var nextAfter: Int64?

    enum CodingKeys: String, CodingKey {
        case items
        case nextAfter = "next_after"
    }

    public init(items: [DeploymentEvent], nextAfter: Int64?) {
        self.items = items
        self.nextAfter = nextAfter
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(nextAfter, forKey: .nextAfter)
    }
}

/// The answer of `POST /v1/deployments/validate` for a request that passes validation and policy.
public struct ValidationResult: Codable, Sendable {
    public var valid: Bool
    public var imageRef: ImageReference
    public var strategy: DeploymentStrategy
    public var replicas: Int

    enum CodingKeys: String, CodingKey {
        case valid, strategy, replicas
        case imageRef = "image_ref"
    }

    public init(valid: Bool, imageRef: ImageReference, strategy: DeploymentStrategy, replicas: Int) {
        self.valid = valid
        self.imageRef = imageRef
        self.strategy = strategy
        self.replicas = replicas
    }
}

/// `GET /v1/policy`: the rules, and the allowed registries (null when every registry is allowed).
public struct PolicyDocument: Codable, Sendable {
    public var rules: [DeploymentPolicy.Rule]
    public var allowedRegistries: [String]?

    enum CodingKeys: String, CodingKey {
        case rules
        case allowedRegistries = "allowed_registries"
    }

    public init(rules: [DeploymentPolicy.Rule], allowedRegistries: [String]?) {
        self.rules = rules
        self.allowedRegistries = allowedRegistries
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(rules, forKey: .rules)
        try container.encode(allowedRegistries, forKey: .allowedRegistries)
    }
}

/// JSON coding shared by the API and its clients: RFC 3339 timestamps in UTC with milliseconds.
public enum CodeJSON {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(format(date))
        }
        return encoder
    }()

    public static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an RFC 3339 timestamp: \(text)")
            }
            return date
        }
        return decoder
    }()

    public static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }

    public static func parse(_ text: String) -> Date? {
        (try? Date(text, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))
            ?? (try? Date(text, strategy: .iso8601))
    }
}
