import PostgresNIO

// The statements sent for every deployment (the worker's claim, events, manifests, finish and lease
// renewal; the event a create, a cancellation or a failed-after-exhaustion writes) as prepared statements:
// each connection parses them once, then binds and runs them (PostgreSQL plans the first few runs and
// then keeps a generic plan when it is no costlier). Why: sent as unnamed statements, PostgreSQL parsed,
// analysed and planned each one anew, about 40 % of the server's CPU under the worker benchmark
// (docs/performance.md), and the server's CPU was what bounded deployments per second. postgres-nio
// prepares a statement on a connection the first time it runs there, under the type's name.
//
// Parameters are explicit ($n) and typed (`bindingDataTypes`, as the interpolated statements typed
// them), so the text is fixed. What this asks of operations (a pooler in transaction mode, migrations that
// change a returned column's type) is in docs/persistence.md.

/// The guard of every write a worker makes under its lease: the deployment's row, while this claim holds it.
/// Parameters $1 (deployment id), $2 (lease owner), $3 (attempt, the fencing token).
private let leaseHeld = "id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'running'"

extension Claim {
    fileprivate static let guardTypes: [PostgresDataType] = [.text, .text, .int8]

    fileprivate func appendGuard(to bindings: inout PostgresBindings) {
        bindings.append(deployment.id)
        bindings.append(owner)
        bindings.append(Int64(attempt))
    }
}

extension EventInsert {
    /// The event table's columns every insert writes, in the order every statement lists them.
    fileprivate static let columns = ["deployment_id", "at", "attempt", "worker_id", "step", "kind", "outcome", "duration_ms", "message"]
    fileprivate static let columnList = columns.joined(separator: ", ")
    fileprivate static let types: [PostgresDataType] = [.text, .int8, .int8, .text, .text, .text, .text, .int8, .text]

    /// A SELECT list that yields event rows: `values` (an expression for each column) in `columnList`'s order,
    /// whatever order they are named in.
    fileprivate static func selectList(_ values: [String: String]) -> String {
        precondition(Set(values.keys) == Set(columns), "an event row has an expression for every column")
        return columns.map { values[$0]! }.joined(separator: ", ")
    }

    /// The event's nine values as parameters from `$first` on, in `columnList`'s order.
    fileprivate static func parameters(from first: Int) -> String {
        (first..<first + types.count).map { "$\($0)" }.joined(separator: ", ")
    }

    fileprivate func append(to bindings: inout PostgresBindings) {
        bindings.append(deploymentID)
        bindings.append(at)
        bindings.append(attempt)
        bindings.append(workerID)
        bindings.append(step)
        bindings.append(kind)
        bindings.append(outcome)
        bindings.append(durationMs)
        bindings.append(message)
    }
}

/// A statement whose row is one value (a returned id, a flag).
protocol SingleValueStatement: PostgresPreparedStatement where Row: PostgresDecodable {}

extension SingleValueStatement {
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

/// A write under a worker's lease: the guard's three parameters ($1 to $3, `leaseHeld`), then its own.
protocol LeaseGuardedStatement: SingleValueStatement {
    var claim: Claim { get }
    /// The statement's own values, $4 on.
    func appendValues(to bindings: inout PostgresBindings)
}

extension LeaseGuardedStatement {
    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: Self.bindingDataTypes.count)
        claim.appendGuard(to: &bindings)
        appendValues(to: &bindings)
        return bindings
    }
}

/// An event, in the transaction of the change it records.
struct InsertEventStatement: PostgresPreparedStatement {
    typealias Row = ()
    static let sql = "INSERT INTO deployment_events (\(EventInsert.columnList)) VALUES (\(EventInsert.parameters(from: 1)))"
    static let bindingDataTypes = EventInsert.types

    let event: EventInsert

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: Self.bindingDataTypes.count)
        event.append(to: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws {}
}

/// The next claimable deployment, leased to a worker; and, in the same statement, every unheld deployment
/// whose cancellation was requested ends cancelled (never claimed again). Parameters: $1 worker, $2 the
/// cancellation's reason, $3 lease in milliseconds, $4 max failures, $5 max claims (`claimLimit`).
struct ClaimNextStatement: PostgresPreparedStatement {
    typealias Row = DeploymentRecord
    private static let now = PostgresStore.databaseNow
    static let sql = """
        WITH cancelled AS (
            UPDATE deployments SET status = 'cancelled', error = $2, finished_at = \(now), updated_at = \(now),
                lease_owner = NULL, lease_expires_at = NULL
            WHERE seq IN (
                -- Whatever its attempts: a requested cancellation ends it cancelled, never failed or run.
                -- Locked in seq order and skipping rows others hold, so claims neither wait nor deadlock.
                SELECT seq FROM deployments WHERE cancel_requested = 1 AND \(PostgresStore.unheld)
                ORDER BY seq FOR UPDATE SKIP LOCKED
            )
            RETURNING id, attempt
        ), cancel_events AS (
            INSERT INTO deployment_events (\(EventInsert.columnList))
            SELECT \(cancelEvent) FROM cancelled
        )
        UPDATE deployments SET status = 'running', lease_owner = $1, lease_expires_at = \(now) + $3,
            attempt = attempt + 1, releases = releases + (CASE WHEN status = 'running' THEN 1 ELSE 0 END),
            started_at = COALESCE(started_at, \(now)), updated_at = \(now)
        WHERE seq = (
            SELECT seq FROM deployments
            WHERE \(PostgresStore.unheld) AND failures < $4 AND attempt < $5 AND cancel_requested = 0
            ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
        )
        RETURNING \(DeploymentRecord.columns)
        """
    static let bindingDataTypes: [PostgresDataType] = [.text, .text, .int8, .int8, .int8]
    private static let cancelEvent = EventInsert.selectList([
        "deployment_id": "id", "at": now, "attempt": "attempt", "worker_id": "$1", "step": "'cancel'", "kind": "'finished'",
        "outcome": "'cancelled'", "duration_ms": "NULL", "message": "'cancelled on request before a worker ran it again'",
    ])

    let worker: String
    let leaseMilliseconds: Int64
    let maxAttempts: Int

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: Self.bindingDataTypes.count)
        bindings.append(worker)
        bindings.append(StoreEvents.cancelledReason)
        bindings.append(leaseMilliseconds)
        bindings.append(Int64(maxAttempts))
        bindings.append(Int64(StoreEvents.claimLimit(maxAttempts: maxAttempts)))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> DeploymentRecord { try DeploymentRecord(row) }
}

// appendEvents, saveManifests and finish are one statement each (one round trip, its own transaction):
// the lease's row is locked (or updated) in a CTE and the write reads from it, so it lands only while the
// lease is held, as BEGIN, SELECT ... FOR UPDATE, the write and COMMIT did in four. Each returns the
// deployment's id when it wrote, no row when the lease is gone.

/// Events of one claim as six arrays, an element per event, so that one fixed statement inserts any number
/// of them in order. postgres-nio binds no arrays of optionals: a missing outcome travels as '' and a
/// missing duration as -1 (neither is a value either column takes), and `NULLIF` restores them.
struct EventBatch: Sendable {
    static let types: [PostgresDataType] = [.int8Array, .textArray, .textArray, .textArray, .int8Array, .textArray]

    /// The batch's rows, `e.at` ... `e.message` and `e.n` (its position), from the arrays at `$first` on.
    static func rows(from first: Int) -> String {
        let arrays = zip(first..., types).map { "$\($0)::\($1.knownSQLName!)" }
        return "unnest(\(arrays.joined(separator: ", "))) WITH ORDINALITY AS e(at, step, kind, outcome, duration_ms, message, n)"
    }

    /// The event row of each element of the batch, with the claim from the lease's guard ($1 deployment,
    /// $2 worker, $3 attempt).
    static let values = EventInsert.selectList([
        "deployment_id": "$1", "worker_id": "$2", "attempt": "$3", "at": "e.at", "step": "e.step", "kind": "e.kind",
        "outcome": "NULLIF(e.outcome, '')", "duration_ms": "NULLIF(e.duration_ms, -1)", "message": "e.message",
    ])

    private var at: [Int64] = []
    private var step: [String] = []
    private var kind: [String] = []
    private var outcome: [String] = []
    private var durationMs: [Int64] = []
    private var message: [String] = []

    init(_ events: [NewEvent]) {
        for event in events {
            at.append(event.at.millisecondsSinceEpoch)
            step.append(event.step)
            kind.append(event.kind.rawValue)
            outcome.append(event.outcome?.rawValue ?? "")
            durationMs.append(event.durationMs ?? -1)
            message.append(event.message)
        }
    }

    func append(to bindings: inout PostgresBindings) {
        bindings.append(at)
        bindings.append(step)
        bindings.append(kind)
        bindings.append(outcome)
        bindings.append(durationMs)
        bindings.append(message)
    }
}

/// Events of a worker's pipeline, in order, written only while its lease is held.
struct AppendEventsStatement: LeaseGuardedStatement {
    typealias Row = String
    static let sql = """
        WITH held AS (SELECT seq FROM deployments WHERE \(leaseHeld) FOR UPDATE)
        INSERT INTO deployment_events (\(EventInsert.columnList))
        SELECT \(EventBatch.values) FROM held, \(EventBatch.rows(from: 4)) ORDER BY e.n
        RETURNING deployment_id
        """
    static let bindingDataTypes = Claim.guardTypes + EventBatch.types

    let claim: Claim
    let events: EventBatch

    func appendValues(to bindings: inout PostgresBindings) { events.append(to: &bindings) }
}

/// The rendered manifests and the events before them (none or more), written only while the lease is held; a
/// later attempt's manifests replace an earlier one's.
struct SaveManifestsStatement: LeaseGuardedStatement {
    typealias Row = String
    static let sql = """
        WITH held AS (SELECT seq FROM deployments WHERE \(leaseHeld) FOR UPDATE),
        events AS (
            INSERT INTO deployment_events (\(EventInsert.columnList))
            SELECT \(EventBatch.values) FROM held, \(EventBatch.rows(from: 7)) ORDER BY e.n
        )
        INSERT INTO deployment_manifests (deployment_id, attempt, rendered_at, compose, kubernetes)
        SELECT $1, $3, $4, $5, $6 FROM held
        ON CONFLICT (deployment_id) DO UPDATE SET attempt = excluded.attempt, rendered_at = excluded.rendered_at,
            compose = excluded.compose, kubernetes = excluded.kubernetes
        RETURNING deployment_id
        """
    static let bindingDataTypes = Claim.guardTypes + [.int8, .text, .text] + EventBatch.types

    let claim: Claim
    let renderedAt: Int64
    let compose: String
    let kubernetes: String
    let events: EventBatch

    func appendValues(to bindings: inout PostgresBindings) {
        bindings.append(renderedAt)
        bindings.append(compose)
        bindings.append(kubernetes)
        events.append(to: &bindings)
    }
}

/// The deployment's end and its events (the final one last), written only while the lease is held; the lease
/// is cleared.
struct FinishStatement: LeaseGuardedStatement {
    typealias Row = String
    static let sql = """
        WITH finished AS (
            UPDATE deployments SET status = $4, error = $5, finished_at = $6, updated_at = $6, lease_owner = NULL, lease_expires_at = NULL
            WHERE \(leaseHeld)
            RETURNING id
        )
        INSERT INTO deployment_events (\(EventInsert.columnList))
        SELECT \(EventBatch.values) FROM finished, \(EventBatch.rows(from: 7)) ORDER BY e.n
        RETURNING deployment_id
        """
    static let bindingDataTypes = Claim.guardTypes + [.text, .text, .int8] + EventBatch.types

    let claim: Claim
    let status: String
    let error: String?
    /// The final event's time.
    let finishedAt: Int64
    let events: EventBatch

    /// `events`: the final one last.
    init(claim: Claim, status: String, error: String?, events: [NewEvent]) {
        self.claim = claim
        self.status = status
        self.error = error
        finishedAt = events.finalEvent.at.millisecondsSinceEpoch
        self.events = EventBatch(events)
    }

    func appendValues(to bindings: inout PostgresBindings) {
        bindings.append(status)
        bindings.append(error)
        bindings.append(finishedAt)
        events.append(to: &bindings)
    }
}

/// The lease extended from the server's now, and whether a cancellation was requested; no row when the
/// lease is gone.
struct RenewLeaseStatement: LeaseGuardedStatement {
    typealias Row = Int64
    static let sql = """
        UPDATE deployments SET lease_expires_at = \(PostgresStore.databaseNow) + $4, updated_at = \(PostgresStore.databaseNow)
        WHERE \(leaseHeld)
        RETURNING cancel_requested
        """
    static let bindingDataTypes = Claim.guardTypes + [.int8]

    let claim: Claim
    let leaseMilliseconds: Int64

    func appendValues(to bindings: inout PostgresBindings) { bindings.append(leaseMilliseconds) }
}

/// Whether a cancellation of the deployment was requested (the heartbeat's poll between renewals).
struct CancelRequestedStatement: SingleValueStatement {
    typealias Row = Int64
    static let sql = "SELECT cancel_requested FROM deployments WHERE id = $1"
    static let bindingDataTypes: [PostgresDataType] = [.text]

    let deploymentID: String

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(deploymentID)
        return bindings
    }
}

extension AsyncSequence {
    /// The first element, for statements that return at most one row; reads to the end, so that an error
    /// the server reports while the statement runs surfaces here.
    func firstRow() async throws -> Element? {
        var first: Element?
        for try await element in self where first == nil { first = element }
        return first
    }
}
