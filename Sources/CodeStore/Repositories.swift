import CodeDomain
import Foundation

/// A deployment to insert.
public struct NewDeployment: Sendable {
    public var id: String
    public var spec: DeploymentSpec
    public var createdBy: String?
    /// `Idempotency-Key` of the creating request, scoped to `createdBy`.
    public var idempotencyKey: String?
    /// Hash of the request, to tell a retry from a different request reusing the key.
    public var requestHash: String?
    public var createdAt: Date
    /// W3C `traceparent` of the creating request's span (nil when tracing is off): the worker's pipeline
    /// span becomes its child, so one trace runs from the request to the rollout.
    public var traceParent: String?
    /// The audit row of the creating request, written in the deployment's own transaction when the
    /// deployment is created: one write instead of two, and no deployment without its audit row. An
    /// idempotent replay creates nothing and writes no row; the caller audits it.
    public var audit: NewAuditEntry?

    public init(
        id: String = NewDeployment.makeID(), spec: DeploymentSpec, createdBy: String?, idempotencyKey: String? = nil,
        requestHash: String? = nil, createdAt: Date = Date(), traceParent: String? = nil, audit: NewAuditEntry? = nil
    ) {
        self.id = id
        self.spec = spec
        self.createdBy = createdBy
        self.idempotencyKey = idempotencyKey
        self.requestHash = requestHash
        self.createdAt = createdAt
        self.traceParent = traceParent
        self.audit = audit
    }

    /// `dep_` and a version 7 UUID in hex: later ids sort later (TimeOrderedID.swift).
    public static func makeID() -> String { TimeOrderedID.make(prefix: "dep_") }
}

public enum CreateOutcome: Sendable, Equatable {
    case created(Deployment)
    /// The same idempotency key and request came again: the deployment the first request created.
    case replayed(Deployment)

    public var deployment: Deployment {
        switch self {
        case .created(let deployment), .replayed(let deployment): deployment
        }
    }
}

public enum CancelOutcome: Sendable, Equatable {
    /// It was queued: cancelled at once.
    case cancelled(Deployment)
    /// It is running: the worker stops it at its next step boundary or wait.
    case cancelRequested(Deployment)
}

public struct DeploymentFilter: Sendable, Equatable {
    public var status: DeploymentStatus?
    public var service: String?
    public var environment: DeploymentEnvironment?
    public var limit: Int
    /// Only deployments older than this position (from a previous page's cursor).
    public var before: Int64?

    public init(
        status: DeploymentStatus? = nil, service: String? = nil, environment: DeploymentEnvironment? = nil, limit: Int = 20,
        before: Int64? = nil
    ) {
        self.status = status
        self.service = service
        self.environment = environment
        self.limit = limit
        self.before = before
    }
}

/// A page from the store: items and, when more follow, the position to continue from.
public struct StorePage<Item: Sendable>: Sendable {
    public var items: [Item]
    public var next: Int64?
}

public protocol DeploymentRepository: Sendable {
    /// Inserts a queued deployment, or with a known idempotency key returns the earlier one.
    /// Throws `StoreError.idempotencyMismatch` when the key was used for a different request.
    func createDeployment(_ deployment: NewDeployment) async throws -> CreateOutcome
    func deployment(id: String) async throws -> Deployment?
    /// Newest first.
    func deployments(matching filter: DeploymentFilter) async throws -> StorePage<Deployment>
    /// Throws `StoreError.notFound`, or `StoreError.conflict` when the deployment already ended.
    func cancelDeployment(id: String, by keyID: String?, at now: Date) async throws -> CancelOutcome
    /// In order, after the event with sequence `after`.
    func events(deploymentID: String, after: Int64?, limit: Int) async throws -> StorePage<DeploymentEvent>
    func manifests(deploymentID: String) async throws -> DeploymentManifests?
}

public struct NewAPIKey: Sendable {
    public var id: String
    public var name: String
    public var role: Role
    public var prefix: String
    public var secretHash: String
    public var createdBy: String?
    public var createdAt: Date

    public init(
        id: String = NewAPIKey.makeID(), name: String, role: Role, prefix: String, secretHash: String, createdBy: String?,
        createdAt: Date = Date()
    ) {
        self.id = id
        self.name = name
        self.role = role
        self.prefix = prefix
        self.secretHash = secretHash
        self.createdBy = createdBy
        self.createdAt = createdAt
    }

    public static func makeID() -> String { "key_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(20) }
}

/// A key as authentication sees it: with its hash, to compare in constant time.
public struct StoredAPIKey: Sendable, Equatable {
    public var key: APIKey
    public var secretHash: String
}

public protocol APIKeyRepository: Sendable {
    func createKey(_ key: NewAPIKey) async throws -> APIKey
    /// Makes sure a key with this secret exists (creating it with `name` and `role` if not) and returns it.
    /// A revoked key stays revoked: bootstrapping never resurrects it.
    func ensureKey(_ key: NewAPIKey) async throws -> APIKey
    func key(secretHash: String) async throws -> StoredAPIKey?
    func keys(limit: Int, before: Int64?) async throws -> StorePage<APIKey>
    /// Returns the key as revoked (an already revoked key is returned unchanged), or nil if none has the id.
    func revokeKey(id: String, at now: Date) async throws -> APIKey?
    func recordKeyUse(id: String, at now: Date) async throws
}

public struct NewAuditEntry: Sendable {
    public var at: Date
    public var keyID: String?
    public var action: String
    public var target: String?
    public var outcome: String
    public var status: Int
    public var requestID: String?
    public var method: String
    public var path: String
    /// The client that sent the request, when it said (e.g. `code-mcp`); the API bounds its length.
    public var client: String?

    public init(
        at: Date, keyID: String?, action: String, target: String?, outcome: String, status: Int, requestID: String?, method: String,
        path: String, client: String? = nil
    ) {
        self.at = at
        self.keyID = keyID
        self.action = action
        self.target = target
        self.outcome = outcome
        self.status = status
        self.requestID = requestID
        self.method = method
        self.path = path
        self.client = client
    }
}

public protocol AuditRepository: Sendable {
    func recordAudit(_ entry: NewAuditEntry) async throws
    /// Newest first.
    func auditEntries(limit: Int, before: Int64?) async throws -> StorePage<AuditEntry>
}

/// A deployment a worker holds, with the lease that lets it change the deployment.
///
/// `attempt` is the fencing token: every claim increments it, and every guarded write checks it as well
/// as the owner, so a pipeline whose lease was taken over (even by the same worker id, after a slow
/// database) changes nothing.
public struct Claim: Sendable, Equatable {
    public var deployment: Deployment
    public var owner: String
    /// Attempts that ended in an error (not releases): what max attempts applies to.
    public var failures: Int
    /// Times the deployment was given back without a result (drain, shutdown, an expired lease).
    public var releases: Int
    /// The creating request's W3C `traceparent`, when it was traced.
    public var traceParent: String?
    public var attempt: Int { deployment.attempt }

    public init(deployment: Deployment, owner: String, failures: Int, releases: Int, traceParent: String? = nil) {
        self.deployment = deployment
        self.owner = owner
        self.failures = failures
        self.releases = releases
        self.traceParent = traceParent
    }
}

extension [NewEvent] {
    /// The last of the events a `finish` or a `release` writes: its own, whose time is the change's. Every
    /// store asks for it, so a caller that passes none stops here, before anything is written.
    var finalEvent: NewEvent {
        guard let final = last else { preconditionFailure("a finish or a release carries its own event, last") }
        return final
    }
}

extension WorkQueue {
    /// Appends one event if the lease is still held; false when it is not.
    public func appendEvent(_ claim: Claim, _ event: NewEvent) async throws -> Bool {
        try await appendEvents(claim, [event])
    }

    /// Saves the rendered manifests if the lease is still held; false when it is not.
    public func saveManifests(_ claim: Claim, compose: String, kubernetes: String, at now: Date) async throws -> Bool {
        try await saveManifests(claim, compose: compose, kubernetes: kubernetes, at: now, events: [])
    }

    /// Ends the deployment if the lease is still held, with its final event.
    public func finish(_ claim: Claim, status: DeploymentStatus, error: String?, event: NewEvent) async throws -> Bool {
        try await finish(claim, status: status, error: error, events: [event])
    }

    /// Gives the deployment back to the queue with the release's event (see `release(_:events:afterFailure:)`).
    public func release(_ claim: Claim, event: NewEvent, afterFailure: Bool) async throws -> Bool {
        try await release(claim, events: [event], afterFailure: afterFailure)
    }
}

/// What a lease renewal found.
public enum LeaseState: Sendable, Equatable {
    case held(cancelRequested: Bool)
    /// Another worker holds it now, or it ended: stop and change nothing.
    case lost
}

/// The worker's side of the store: claiming with leases, and changes that only the lease holder may make.
///
/// Lease expiry is computed and compared with the database's clock (not the workers'), so workers whose
/// clocks disagree still agree on when a lease expired.
public protocol WorkQueue: Sendable {
    /// Claims the oldest claimable deployment: queued, or running with an expired lease, with fewer than
    /// `maxAttempts` failures. Increments `attempt` (and `releases` when it takes over an expired lease).
    /// A claimable deployment whose cancellation was requested is ended `cancelled` instead, never run.
    /// (The pipeline records the `claim` event.)
    func claimNext(worker: String, leaseDuration: Duration, maxAttempts: Int) async throws -> Claim?
    /// Fails claimable deployments that have used up their `maxAttempts` failures. Returns their ids.
    func failExhausted(maxAttempts: Int) async throws -> [String]
    func renewLease(_ claim: Claim, leaseDuration: Duration) async throws -> LeaseState
    /// Whether a client asked to cancel the deployment: a read, so pipelines can look often.
    func isCancelRequested(deploymentID: String) async throws -> Bool
    /// Appends `events` (at least one), in order and all together, if the lease is still held; false when
    /// it is not.
    func appendEvents(_ claim: Claim, _ events: [NewEvent]) async throws -> Bool
    /// Saves the rendered manifests (a later attempt's replace an earlier one's) and, before them, `events`
    /// (any number, in order: the pipeline's events not written yet), all together if the lease is still
    /// held; false when it is not.
    func saveManifests(_ claim: Claim, compose: String, kubernetes: String, at now: Date, events: [NewEvent]) async throws -> Bool
    /// Ends the deployment if the lease is still held, with `events`: the last is the final event (its time
    /// is `finished_at`); any before it are events of the pipeline not written yet.
    func finish(_ claim: Claim, status: DeploymentStatus, error: String?, events: [NewEvent]) async throws -> Bool
    /// Gives the deployment back to the queue (graceful shutdown, or after an error with
    /// `afterFailure`, which counts against max attempts) so another worker takes it at once, with `events`
    /// (the last is the release's own; its time is the release's). If a cancellation was requested, the
    /// deployment ends `cancelled` instead. False when the lease is not held.
    func release(_ claim: Claim, events: [NewEvent], afterFailure: Bool) async throws -> Bool
    /// How many deployments are queued, and how long the oldest has waited: the database's clock now minus its
    /// `created_at` (written by code-api's clock; a released deployment counts from its creation).
    func queueStatus() async throws -> QueueStatus
}

/// The queue as housekeeping reports it.
public struct QueueStatus: Sendable, Equatable {
    public var depth: Int
    /// Since the oldest queued deployment was created; nil when none is queued.
    public var oldestAge: Duration?

    public init(depth: Int, oldestAge: Duration?) {
        self.depth = depth
        self.oldestAge = oldestAge
    }
}

extension WorkQueue {
    public func queueDepth() async throws -> Int {
        try await queueStatus().depth
    }

    /// A release that is not a failure (drain, shutdown).
    public func release(_ claim: Claim, event: NewEvent) async throws -> Bool {
        try await release(claim, event: event, afterFailure: false)
    }
}

/// An event a worker appends.
public struct NewEvent: Sendable {
    public var at: Date
    public var step: String
    public var kind: DeploymentEvent.Kind
    public var outcome: DeploymentEvent.Outcome?
    public var durationMs: Int64?
    public var message: String

    public init(
        at: Date = Date(), step: String, kind: DeploymentEvent.Kind, outcome: DeploymentEvent.Outcome? = nil, durationMs: Int64? = nil,
        message: String
    ) {
        self.at = at
        self.step = step
        self.kind = kind
        self.outcome = outcome
        self.durationMs = durationMs
        self.message = message
    }
}

/// Everything code-api and code-worker keep, behind one database.
public protocol Store: DeploymentRepository, APIKeyRepository, AuditRepository, WorkQueue {
    /// `sqlite` or `postgres`.
    var backend: String { get }
    func migrate() async throws
    /// A trivial query, for readiness.
    func ping() async throws
}
