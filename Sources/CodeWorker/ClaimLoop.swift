import AsyncHTTPClient
import CodeConfiguration
import CodeDomain
import CodeStore
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Claims queued deployments and runs up to `concurrency` pipelines at once.
///
/// Idle, it polls with backoff up to `maximumPollInterval`; on PostgreSQL a LISTEN on the API's
/// notification channel wakes it at once. On graceful shutdown it stops claiming and interrupts every
/// pipeline, which releases its deployment at the next wait or step boundary so that another worker
/// takes it at once.
final class ClaimLoop: Service, Sendable {
    let settings: WorkerSettings
    let store: any Store
    let postgres: PostgresStore?
    let metrics: WorkerMetrics
    let logger: Logger
    let driver: any RolloutDriver
    let verifier: HealthVerifier
    private let wakeup = Wakeup()
    private let state = NIOLockedValueBox(State())

    /// Shortest idle wait: the first poll after finding nothing.
    static let minimumPollInterval: Duration = .milliseconds(10)
    /// Housekeeping (failing exhausted deployments, queue depth) at most this often.
    static let housekeepingInterval: Duration = .seconds(1)

    struct State {
        var inFlight: [String: InFlight] = [:]
        var counts: [PipelineOutcome: Int] = [:]
        var claims = 0
        var draining = false
        var lastIteration = ContinuousClock.now
        var queueDepth = 0
    }

    struct InFlight {
        let claim: Claim
        let control: PipelineControl
        let step: NIOLockedValueBox<String>
    }

    init(
        settings: WorkerSettings, store: any Store, postgres: PostgresStore?, metrics: WorkerMetrics, logger: Logger, httpClient: HTTPClient
    ) {
        self.settings = settings
        self.store = store
        self.postgres = postgres
        self.metrics = metrics
        self.logger = logger
        switch settings.rollout {
        case .simulated(let step):
            driver = SimulatedDriver(step: step)
        case .webhook(let webhook):
            driver = WebhookDriver(settings: webhook, client: httpClient, metrics: metrics, logger: logger)
        }
        verifier = HealthVerifier(client: httpClient, timeout: settings.verifyTimeout, interval: settings.verifyInterval)
    }

    func run() async throws {
        // The store's schema must exist before the first claim; on PostgreSQL the pool is a sibling
        // service that is starting too, so migrations wait for it (and end with cancellation). A SIGTERM
        // while they wait (the database unreachable) ends the wait: a graceful stop, exit 0.
        do {
            try await cancelWhenGracefulShutdown { try await self.migrate() }
        } catch  where Task.isShuttingDownGracefully && !error.hasOwnExitCode {
            logger.info("stopped before migrations finished", metadata: ["worker_id": .string(settings.workerID)])
            return
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                if let postgres {
                    group.addTask { await self.listen(postgres) }
                }
                group.addTask { await self.claimUntilDraining() }
                // The claim loop returns once drained and its pipelines are done; the listener runs until
                // cancelled, so whichever ends first ends both.
                _ = await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.drain()
        }
        logger.info("claim loop stopped", metadata: ["worker_id": .string(settings.workerID)])
    }

    private func migrate() async throws {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                try await store.migrate()
                return
            } catch let error as StoreError where error.exitCode != 1 {
                // A database migrated by a newer version does not get better with retries: stop.
                throw error
            } catch  where !Task.isCancelled {
                logger.warning("migrations failed; retrying", metadata: ["error": .string("\(error)"), "retry_in": .string("\(delay)")])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    private func drain() {
        let controls = state.withLockedValue { state in
            state.draining = true
            return state.inFlight.values.map(\.control)
        }
        logger.info(
            "draining: no new claims; in-flight deployments are released", metadata: ["in_flight": .stringConvertible(controls.count)])
        for control in controls { control.interrupt(.draining) }
        wakeup.signal()
    }

    private func claimUntilDraining() async {
        await withDiscardingTaskGroup { pipelines in
            var idle = Self.minimumPollInterval
            var lastHousekeeping = ContinuousClock.now - Self.housekeepingInterval
            // Ends on drain (graceful shutdown) and on cancellation (the service group giving up, e.g.
            // because the HTTP port is taken): waits return at once when cancelled, so looping on would spin.
            while !Task.isCancelled {
                let (draining, busy) = state.withLockedValue { state in
                    state.lastIteration = .now
                    return (state.draining, state.inFlight.count >= settings.concurrency)
                }
                if draining { break }
                if ContinuousClock.now - lastHousekeeping >= Self.housekeepingInterval {
                    lastHousekeeping = .now
                    await housekeeping()
                }
                if !busy {
                    do {
                        if let claim = try await store.claimNext(
                            worker: settings.workerID, leaseDuration: settings.leaseDuration, maxAttempts: settings.maxAttempts)
                        {
                            start(claim, in: &pipelines)
                            idle = Self.minimumPollInterval
                            continue
                        }
                    } catch is CancellationError {
                        break
                    } catch {
                        logger.error("claim failed", metadata: ["error": .string("\(error)")])
                    }
                }
                await wakeup.wait(timeout: idle)
                idle = min(idle * 2, settings.maximumPollInterval)
            }
        }
    }

    private func start(_ claim: Claim, in pipelines: inout DiscardingTaskGroup) {
        let inFlight = InFlight(claim: claim, control: PipelineControl(), step: NIOLockedValueBox("claim"))
        let draining = state.withLockedValue { state in
            state.inFlight[claim.deployment.id] = inFlight
            state.claims += 1
            return state.draining
        }
        // A claim that raced with the shutdown signal is released by its pipeline at once.
        if draining { inFlight.control.interrupt(.draining) }
        metrics.claims(firstAttempt: claim.attempt == 1).increment()
        metrics.inFlight.increment()
        logger.info("claimed", metadata: ["deployment_id": .string(claim.deployment.id), "attempt": .stringConvertible(claim.attempt)])
        let pipeline = Pipeline(
            claim: claim, store: store, settings: settings, driver: driver, verifier: verifier,
            metrics: metrics, logger: logger, control: inFlight.control, step: inFlight.step
        )
        pipelines.addTask {
            let outcome = await pipeline.run()
            self.state.withLockedValue { state in
                state.inFlight[claim.deployment.id] = nil
                state.counts[outcome, default: 0] += 1
            }
            self.metrics.inFlight.decrement()
            self.metrics.finished(outcome.rawValue).increment()
            self.wakeup.signal()
        }
    }

    private func housekeeping() async {
        do {
            let failed = try await store.failExhausted(maxAttempts: settings.maxAttempts)
            for id in failed {
                logger.warning("failed after exhausting its attempts", metadata: ["deployment_id": .string(id)])
                metrics.failedExhausted.increment()
            }
            let queue = try await store.queueStatus()
            state.withLockedValue { $0.queueDepth = queue.depth }
            metrics.queueDepth.record(queue.depth)
            metrics.queueOldestAge.record(Double((queue.oldestAge ?? .zero) / .milliseconds(1)) / 1000)
        } catch {
            logger.error("housekeeping failed", metadata: ["error": .string("\(error)")])
        }
    }

    /// LISTEN for the API's notifications; reconnects after errors until cancelled.
    private func listen(_ postgres: PostgresStore) async {
        while !Task.isCancelled {
            do {
                try await postgres.listen(on: PostgresStore.queuedChannel) { self.wakeup.signal() }
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("LISTEN failed; polling until it is back", metadata: ["error": .string("\(error)")])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    // MARK: Status

    /// Whether the loop went round recently: a stuck loop makes the worker not ready.
    var isAlive: Bool {
        let (last, draining) = state.withLockedValue { ($0.lastIteration, $0.draining) }
        let limit = max(Duration.seconds(5), settings.maximumPollInterval * 4)
        return !draining && ContinuousClock.now - last < limit
    }

    func status() -> WorkerStatus {
        state.withLockedValue { state in
            WorkerStatus(
                workerID: settings.workerID,
                concurrency: settings.concurrency,
                driver: settings.rollout.driverName,
                draining: state.draining,
                queueDepth: state.queueDepth,
                inFlight: state.inFlight.values
                    .map {
                        WorkerStatus.InFlight(
                            deploymentID: $0.claim.deployment.id, attempt: $0.claim.attempt, step: $0.step.withLockedValue { $0 })
                    }
                    .sorted { $0.deploymentID < $1.deploymentID },
                counts: WorkerStatus.Counts(
                    claimed: state.claims,
                    succeeded: state.counts[.succeeded, default: 0],
                    failed: state.counts[.failed, default: 0],
                    cancelled: state.counts[.cancelled, default: 0],
                    released: state.counts[.released, default: 0],
                    leasesLost: state.counts[.leaseLost, default: 0],
                    abandoned: state.counts[.abandoned, default: 0]
                )
            )
        }
    }
}

/// `GET /v1/worker`.
public struct WorkerStatus: Codable, Sendable, Equatable {
    public let workerID: String
    public let concurrency: Int
    public let driver: String
    public let draining: Bool
    public let queueDepth: Int
    public let inFlight: [InFlight]
    public let counts: Counts

    public struct InFlight: Codable, Sendable, Equatable {
        public let deploymentID: String
        public let attempt: Int
        public let step: String

        enum CodingKeys: String, CodingKey {
            case attempt, step
            case deploymentID = "deployment_id"
        }
    }

    public struct Counts: Codable, Sendable, Equatable {
        public let claimed: Int
        public let succeeded: Int
        public let failed: Int
        public let cancelled: Int
        public let released: Int
        public let leasesLost: Int
        /// Ends that could not be recorded (database errors); another worker runs those again.
        public let abandoned: Int

        enum CodingKeys: String, CodingKey {
            case claimed, succeeded, failed, cancelled, released, abandoned
            case leasesLost = "leases_lost"
        }
    }

    enum CodingKeys: String, CodingKey {
        case concurrency, driver, draining, counts
        case workerID = "worker_id"
        case queueDepth = "queue_depth"
        case inFlight = "in_flight"
    }
}
