import CodeDomain
import Foundation

// Rows of `deployment_events` as the database stores them: the record both backends read (see
// DeploymentRecords.swift) and the stored form of an event to insert.

/// A row of `deployment_events`.
struct EventRecord: Sendable {
    var seq: Int64
    var deploymentID: String
    var at: Int64
    var attempt: Int64
    var workerID: String?
    var step: String
    var kind: String
    var outcome: String?
    var durationMs: Int64?
    var message: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case seq
        case deploymentID = "deployment_id"
        case at, attempt
        case workerID = "worker_id"
        case step, kind, outcome
        case durationMs = "duration_ms"
        case message
    }

    static let columns = CodingKeys.columnList

    func event() throws -> DeploymentEvent {
        DeploymentEvent(
            sequence: seq, deploymentID: deploymentID, at: Date(millisecondsSinceEpoch: at), attempt: Int(attempt),
            workerID: workerID, step: step, kind: try .init(stored: kind, column: "kind"),
            outcome: try outcome.map { try .init(stored: $0, column: "outcome") }, durationMs: durationMs, message: message
        )
    }
}

/// An event to insert, in stored form: who wrote it (a worker, or nobody for the API's own events) and
/// in which attempt.
struct EventInsert: Sendable {
    var deploymentID: String
    var at: Int64
    var attempt: Int64
    var workerID: String?
    var step: String
    var kind: String
    var outcome: String?
    var durationMs: Int64?
    var message: String

    init(deploymentID: String, attempt: Int, workerID: String?, _ event: NewEvent) {
        self.deploymentID = deploymentID
        at = event.at.millisecondsSinceEpoch
        self.attempt = Int64(attempt)
        self.workerID = workerID
        step = event.step
        kind = event.kind.rawValue
        outcome = event.outcome?.rawValue
        durationMs = event.durationMs
        message = event.message
    }

    /// An event the worker that holds `claim` writes.
    init(_ claim: Claim, _ event: NewEvent) {
        self.init(deploymentID: claim.deployment.id, attempt: claim.attempt, workerID: claim.owner, event)
    }
}
