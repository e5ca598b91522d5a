import CodeDomain
import Foundation

// The decisions and texts of state changes that the store makes itself (not a worker's pipeline), the
// same on both backends. Each backend runs the statements in its own transaction and hands the result here.

/// What a cancel transaction found and did.
enum CancelTransition: Sendable {
    /// It was queued: now cancelled.
    case cancelled(DeploymentRecord)
    /// It is running: now marked, for the worker to stop.
    case cancelRequested(DeploymentRecord)
    /// It had already ended; nothing changed.
    case alreadyEnded(status: String)
    case notFound

    func outcome(deploymentID id: String) throws -> CancelOutcome {
        switch self {
        case .cancelled(let record): .cancelled(try record.deployment())
        case .cancelRequested(let record): .cancelRequested(try record.deployment())
        case .alreadyEnded(let status): throw StoreError.conflict("deployment \(id) already ended with status \(status)")
        case .notFound: throw StoreError.notFound
        }
    }
}

enum StoreEvents {
    static func queued(_ new: NewDeployment) -> EventInsert {
        EventInsert(
            deploymentID: new.id, attempt: 0, workerID: nil,
            NewEvent(at: new.createdAt, step: "queue", kind: .info, message: "queued by \(new.createdBy ?? unknownKey)")
        )
    }

    static func cancelledWhileQueued(_ id: String, by keyID: String?, at now: Date) -> EventInsert {
        EventInsert(
            deploymentID: id, attempt: 0, workerID: nil,
            NewEvent(at: now, step: "cancel", kind: .info, outcome: .cancelled, message: "cancelled by \(keyID ?? unknownKey) while queued")
        )
    }

    /// Recorded in the attempt that is running; the worker writes the final event when it stops.
    static func cancellationRequested(_ running: DeploymentRecord, by keyID: String?, at now: Date) -> EventInsert {
        EventInsert(
            deploymentID: running.id, attempt: Int(running.attempt), workerID: nil,
            NewEvent(at: now, step: "cancel", kind: .info, message: "cancellation requested by \(keyID ?? unknownKey)")
        )
    }

    /// How many times a deployment may be claimed in all. Releases (drain, a lost lease, a worker that died)
    /// do not use up `maxAttempts`, but a deployment that makes every worker that runs it die would be
    /// claimed for ever: after this many claims it fails.
    static func claimLimit(maxAttempts: Int) -> Int {
        maxAttempts * 10
    }

    /// The error of a deployment failed by `failExhausted`: it failed `maxAttempts` times, or was claimed
    /// `claimLimit` times without finishing.
    static func exhaustedReason(_ lease: ExhaustedLeaseRecord, maxAttempts: Int) -> String {
        if lease.failures >= maxAttempts { return "gave up after \(maxAttempts) failed attempts" }
        return "gave up after \(lease.attempt) attempts that never finished (each one's worker stopped or lost it)"
    }

    /// The error of a deployment with a cancellation request that a worker claimed or released.
    static let cancelledReason = "cancelled on request"

    /// The final event of a deployment that the store ended as cancelled instead of (re)running it.
    static func cancelledInsteadOfRun(_ cancelled: CancelledRecord, at now: Date, by worker: String?, when: String) -> EventInsert {
        EventInsert(
            deploymentID: cancelled.id, attempt: Int(cancelled.attempt), workerID: worker,
            NewEvent(at: now, step: "cancel", kind: .finished, outcome: .cancelled, message: "cancelled on request \(when)")
        )
    }

    /// The final event of a deployment failed by `failExhausted`, in the name of the worker that lost it.
    static func exhausted(_ expired: ExhaustedLeaseRecord, reason: String, at now: Date) -> EventInsert {
        EventInsert(
            deploymentID: expired.id, attempt: Int(expired.attempt), workerID: expired.leaseOwner,
            NewEvent(at: now, step: "lease", kind: .finished, outcome: .failed, message: reason)
        )
    }

    private static let unknownKey = "an unknown key"
}

extension DeploymentStatus {
    /// `finish` ends a deployment: only a final status will do.
    func requireTerminal() throws {
        guard isTerminal else { throw StoreError.invalidArgument("finish needs a final status, not \(rawValue)") }
    }
}
