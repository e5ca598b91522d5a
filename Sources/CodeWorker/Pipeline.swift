import CodeDomain
import CodeRuntime
import CodeStore
import CodeTiming
import Foundation
import Logging
import NIOConcurrencyHelpers
import Tracing

/// How a pipeline ended, for the worker's counts and metrics.
enum PipelineOutcome: String, Sendable, CaseIterable {
    case succeeded, failed, cancelled, released
    case leaseLost = "lease_lost"
    /// The end could not be recorded (database error): the lease expires and another worker retries.
    case abandoned
}

/// The steps of one claimed deployment: validate, render, rollout, verify.
///
/// Every step writes a `started` and a `finished` event (with duration and outcome) through guarded
/// writes: when a write finds the lease gone, the pipeline stops and changes nothing more. Events are
/// written when something waits on them, not one statement each: validate and render work inside the
/// worker, so their events and the `claim` event go out with the rendered manifests; the `started` of a
/// step that reaches outside (rollout, verify) goes out before its work begins, with the previous step's
/// `finished`; the driver's and the verifier's progress at once; the last events with the deployment's
/// end. The work between two writes is the worker's own computing, so a crash loses at most the events
/// since the last write (before the manifests' write: the claim and validate's). An event write that
/// fails takes the events recorded before it along:
/// writing them again could write them twice, because a write that timed out may still have committed
/// while the lease stays held. The end's events are kept when it fails: the release that follows writes
/// them, and if the end did commit, the release finds the lease gone and writes nothing. A heartbeat
/// renews the lease every third of its duration and watches for cancellation requests, which
/// interrupt the pipeline between steps and in every wait.
struct Pipeline: Sendable {
    let claim: Claim
    let store: any WorkQueue
    let settings: WorkerSettings
    let driver: any RolloutDriver
    let verifier: HealthVerifier
    let metrics: WorkerMetrics
    let logger: Logger
    let control: PipelineControl
    let step: NIOLockedValueBox<String>
    /// Events recorded and not written yet: they go out with the next write (`event`, the manifests', `finish`, `release`).
    private let unwritten = NIOLockedValueBox<[NewEvent]>([])

    /// How often the heartbeat looks for a cancellation request (a read), between lease renewals.
    static let cancellationPollInterval: Duration = .milliseconds(250)

    var deployment: Deployment { claim.deployment }

    func run() async -> PipelineOutcome {
        await withTaskGroup(of: PipelineOutcome?.self) { group in
            // Outside the pipeline's span: its reads, four a second, would bury the steps in database spans.
            group.addTask {
                await heartbeat()
                return nil
            }
            group.addTask {
                // A child of the span of the request that created the deployment: one trace from the client's
                // call to the rollout, whichever worker (or attempt) runs it.
                await withSpan("deployment.pipeline", continuing: claim.traceParent, ofKind: .consumer) { span in
                    span?.attributes["code.deployment.id"] = deployment.id
                    span?.attributes["code.deployment.attempt"] = claim.attempt
                    let outcome = await runSteps()
                    span?.attributes["code.deployment.outcome"] = outcome.rawValue
                    if outcome == .failed || outcome == .abandoned { span?.setStatus(SpanStatus(code: .error)) }
                    return outcome
                }
            }
            var outcome = PipelineOutcome.leaseLost
            for await result in group {
                if let result {
                    outcome = result
                    group.cancelAll()
                }
            }
            return outcome
        }
    }

    // MARK: Steps

    private func runSteps() async -> PipelineOutcome {
        do {
            record(
                "claim", .info,
                message: claim.attempt == 1
                    ? "claimed by \(claim.owner)"
                    : "claimed by \(claim.owner) (attempt \(claim.attempt): the previous worker released it or its lease expired)")
            try await runStep("validate", started: .withTheNextWrite) {
                // The worker does not trust what it reads: the policy may have changed since the API
                // accepted the deployment, and the row may not have come through the API at all.
                let reparsed = try ImageReference(parsing: deployment.image)
                let violations = settings.policy.evaluate(image: reparsed, environment: deployment.environment)
                if !violations.isEmpty {
                    throw RolloutFailure(description: "policy: " + violations.map { "\($0.rule): \($0.message)" }.joined(separator: "; "))
                }
                return "image \(reparsed) satisfies the policy"
            }
            let rendered = try await runStep("render", started: .withTheNextWrite) {
                let manifests = try ManifestRenderer().render(deployment)
                // The manifests' write carries the events so far: the claim, validate's two, render's `started`.
                guard
                    try await store.saveManifests(
                        claim, compose: manifests.compose, kubernetes: manifests.kubernetes, at: Date(), events: takeUnwritten())
                else {
                    throw Interruption.leaseLost
                }
                return (manifests, "rendered Compose and Kubernetes manifests")
            }
            try await runStep("rollout", started: .beforeTheWork) {
                try await driver.rollOut(deployment, attempt: claim.attempt, manifests: rendered, control: control) { message in
                    try await event("rollout", .info, message: message)
                }
                return "\(driver.name) rollout of \(deployment.replicas) replica(s) complete"
            }
            if let healthURL = deployment.healthURL {
                try await runStep("verify", started: .beforeTheWork) {
                    // A health_url the allowlist rejects fails the deployment at once (RolloutFailure):
                    // retrying cannot change the policy, and each retry would be another probe.
                    try await verifier.verify(healthURL, allowlist: settings.healthURLAllowlist, control: control) { message in
                        try await event("verify", .info, message: message)
                    }
                    return "health_url is healthy"
                }
            } else {
                record("verify", .finished, outcome: .skipped, durationMs: 0, message: "no health_url: nothing to verify")
            }
            return try await finish(.succeeded, error: nil, message: "deployment succeeded")
        } catch Interruption.leaseLost {
            return leaseLost()
        } catch Interruption.cancelRequested {
            return await end(
                .cancelled, error: "cancelled on request", message: "cancelled on request during \(step.withLockedValue { $0 })")
        } catch Interruption.draining {
            return await release("worker \(claim.owner) is shutting down; released for another worker")
        } catch is CancellationError {
            // A forced shutdown cancelled the pipeline: not the deployment's fault, so a release.
            return await release("worker \(claim.owner) was stopped; released for another worker")
        } catch StoreError.unavailable(let reason) {
            // Nor is a database outage (if the release cannot be written either, the lease expires).
            return await release("worker \(claim.owner) lost the database (\(reason)); released for another worker")
        } catch let failure as RolloutFailure {
            return await end(.failed, error: failure.description, message: failure.description)
        } catch let error as ImageReference.ParseError {
            let reason = "image '\(deployment.image)' \(error)"
            return await end(.failed, error: reason, message: reason)
        } catch {
            // Not the deployment's fault (a database or task error): another attempt may succeed, unless
            // this was the last one, which would otherwise come back from the queue forever.
            logger.error("pipeline error", metadata: ["deployment_id": .string(deployment.id), "error": .string("\(error)")])
            // Max attempts counts failures only: releases (drain, shutdown, lost leases) never use it up.
            if claim.failures + 1 >= settings.maxAttempts {
                let reason = "gave up after \(claim.failures + 1) failed attempts; last error: \(error)"
                return await end(.failed, error: reason, message: reason)
            }
            return await release("worker \(claim.owner) hit an error (\(error)); released for another attempt", afterFailure: true)
        }
    }

    /// Records the end, telling a lost lease (someone else owns the deployment) from an error (the end
    /// is not recorded: the lease expires and another worker runs the deployment again).
    private func end(_ status: DeploymentStatus, error: String?, message: String) async -> PipelineOutcome {
        do {
            return try await finish(status, error: error, message: message)
        } catch Interruption.leaseLost {
            return leaseLost()
        } catch {
            logger.error(
                "could not record the end of the deployment",
                metadata: ["deployment_id": .string(deployment.id), "status": .string(status.rawValue), "error": .string("\(error)")])
            return .abandoned
        }
    }

    /// When a step's `started` event is written.
    private enum StartedWrite {
        /// Before the step's work begins: the work reaches outside the worker (a rollout, a probe), and none
        /// of it may happen without its `started` in the database.
        case beforeTheWork
        /// With the next write: the work happens inside the worker (validating, rendering), and the step
        /// writes nothing else before the next write, which carries its events.
        case withTheNextWrite
    }

    /// Runs one step between a `started` and a `finished` event; `body` says what it did.
    private func runStep(_ name: String, started: StartedWrite, _ body: () async throws -> String) async throws {
        try await runStep(name, started: started) { ((), try await body()) }
    }

    /// Runs one step between a `started` and a `finished` event, handing on what `body` produced.
    private func runStep<Value>(
        _ name: String, started: StartedWrite, _ body: () async throws -> (Value, summary: String)
    ) async throws -> Value {
        try await withChildSpan("pipeline.\(name)") { span in
            do {
                return try await runStepEvents(name, started: started, body)
            } catch {
                // An interruption (cancellation, drain, lost lease) is not the step's failure.
                if !(error is Interruption) { span?.setStatus(SpanStatus(code: .error)) }
                throw error
            }
        }
    }

    private func runStepEvents<Value>(
        _ name: String, started: StartedWrite, _ body: () async throws -> (Value, summary: String)
    ) async throws -> Value {
        try control.checkpoint()
        step.withLockedValue { $0 = name }
        switch started {
        case .beforeTheWork: try await event(name, .started, message: "\(name) started")
        case .withTheNextWrite: record(name, .started, message: "\(name) started")
        }
        let start = ContinuousClock.now
        do {
            let (value, message) = try await body()
            let elapsed = ContinuousClock.now - start
            metrics.stepDuration(name, outcome: "succeeded").record(duration: elapsed)
            record(name, .finished, outcome: .succeeded, durationMs: elapsed.milliseconds, message: message)
            return value
        } catch {
            let elapsed = ContinuousClock.now - start
            let (outcome, message): (DeploymentEvent.Outcome, String) =
                switch error {
                case Interruption.cancelRequested: (.cancelled, "\(name) interrupted: cancellation requested")
                case Interruption.draining: (.skipped, "\(name) interrupted: worker shutting down")
                case Interruption.leaseLost: (.failed, "\(name) interrupted: lease lost")
                default: (.failed, "\(name) failed: \(error)")
                }
            metrics.stepDuration(name, outcome: outcome.rawValue).record(duration: elapsed)
            if (error as? Interruption) != .leaseLost {
                _ = try? await store.appendEvents(
                    claim,
                    takeUnwritten() + [
                        NewEvent(step: name, kind: .finished, outcome: outcome, durationMs: elapsed.milliseconds, message: message)
                    ])
            }
            throw error
        }
    }

    /// Writes an event now, after the ones recorded before it; a refused (guarded) write means the lease is gone.
    private func event(
        _ step: String, _ kind: DeploymentEvent.Kind, outcome: DeploymentEvent.Outcome? = nil, durationMs: Int64? = nil, message: String
    ) async throws {
        let event = NewEvent(step: step, kind: kind, outcome: outcome, durationMs: durationMs, message: message)
        guard try await store.appendEvents(claim, takeUnwritten() + [event]) else {
            throw Interruption.leaseLost
        }
    }

    /// Records an event (with its time now) for the next write.
    private func record(
        _ step: String, _ kind: DeploymentEvent.Kind, outcome: DeploymentEvent.Outcome? = nil, durationMs: Int64? = nil, message: String
    ) {
        let event = NewEvent(step: step, kind: kind, outcome: outcome, durationMs: durationMs, message: message)
        unwritten.withLockedValue { $0.append(event) }
    }

    private func takeUnwritten() -> [NewEvent] {
        unwritten.withLockedValue { events in
            defer { events.removeAll() }
            return events
        }
    }

    private func finish(_ status: DeploymentStatus, error: String?, message: String) async throws -> PipelineOutcome {
        let (eventOutcome, outcome): (DeploymentEvent.Outcome, PipelineOutcome) =
            switch status {
            case .succeeded: (.succeeded, .succeeded)
            case .cancelled: (.cancelled, .cancelled)
            default: (.failed, .failed)
            }
        let recorded = takeUnwritten()
        let finished: Bool
        do {
            finished = try await store.finish(
                claim, status: status, error: error,
                events: recorded + [NewEvent(step: "finish", kind: .finished, outcome: eventOutcome, message: message)])
        } catch {
            // For the release (or the end's second try) that follows; guarded like this one, so never twice.
            unwritten.withLockedValue { $0.insert(contentsOf: recorded, at: 0) }
            throw error
        }
        guard finished else { throw Interruption.leaseLost }
        logger.info(
            "deployment finished",
            metadata: [
                "deployment_id": .string(deployment.id), "status": .string(status.rawValue), "attempt": .stringConvertible(claim.attempt),
            ])
        return outcome
    }

    private func release(_ message: String, afterFailure: Bool = false) async -> PipelineOutcome {
        // Detached, so that a forced shutdown (which cancels this task) still gives the deployment back.
        let store = self.store
        let claim = self.claim
        // The events recorded before the interruption go in the release's transaction: the history stays whole.
        let events = takeUnwritten() + [NewEvent(step: "release", kind: .info, message: message)]
        let released = await Task.detached {
            (try? await store.release(claim, events: events, afterFailure: afterFailure)) ?? false
        }.value
        return released ? .released : leaseLost()
    }

    private func leaseLost() -> PipelineOutcome {
        metrics.leasesLost.increment()
        logger.warning(
            "lease lost; another worker owns the deployment now",
            metadata: ["deployment_id": .string(deployment.id), "attempt": .stringConvertible(claim.attempt)])
        return .leaseLost
    }

    // MARK: Heartbeat

    /// Renews the lease every third of its duration and polls for cancellation in between, until cancelled.
    /// A renewal that misses its deadline counts as a lost lease; one that fails is retried at the next
    /// tick, and once two thirds of the lease passed without a successful renewal, the pipeline stops as
    /// if it had lost it (before the lease expires and another worker may take it).
    private func heartbeat() async {
        let renewal = LeaseRenewal(leaseDuration: settings.leaseDuration)
        let renewEvery = renewal.interval
        let clock = ContinuousClock()
        var lastRenewed = clock.now
        while !Task.isCancelled {
            do {
                try await LoopTimer.sleep(for: Self.cancellationPollInterval)
            } catch {
                return
            }
            do {
                if clock.now - lastRenewed >= renewEvery {
                    // The database set the new expiry when the statement began, not when it answered.
                    let sent = clock.now
                    switch try await renewal.renew({ [store, claim] in
                        try await store.renewLease(claim, leaseDuration: renewal.leaseDuration)
                    }) {
                    case .held(let cancelRequested):
                        lastRenewed = sent
                        if cancelRequested { control.interrupt(.cancelRequested) }
                    case .lost:
                        control.interrupt(.leaseLost)
                        return
                    }
                } else if try await store.isCancelRequested(deploymentID: deployment.id) {
                    control.interrupt(.cancelRequested)
                }
            } catch {
                logger.warning("heartbeat failed", metadata: ["deployment_id": .string(deployment.id), "error": .string("\(error)")])
                if clock.now - lastRenewed >= renewal.giveUpAfter {
                    control.interrupt(.leaseLost)
                    return
                }
            }
        }
    }
}
