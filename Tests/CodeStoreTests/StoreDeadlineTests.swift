import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Testing

@testable import CodeStore

/// The deadline of every PostgreSQL store operation: it holds even when the operation ignores
/// cancellation (a pool waiting for a connection to a server that is down).
@Suite("Store deadline")
struct StoreDeadlineTests {
    @Test(.timeLimit(.minutes(1)))
    func anOperationInTimeReturnsItsValue() async throws {
        #expect(try await StoreDeadline.run(.seconds(30), operation: "quick") { 42 } == 42)
        await #expect(throws: StoreError.conflict("x")) {
            try await StoreDeadline.run(.seconds(30), operation: "fails") { () async throws -> Int in throw StoreError.conflict("x") }
        }
    }

    /// The operation below ignores cancellation and takes 20 s: the caller gets `exceeded` at the deadline
    /// all the same, long before. (20 s and a bound of 10: with 3 s and a bound of 2, a loaded test run
    /// returned after 2.5 s.)
    @Test(.timeLimit(.minutes(1)))
    func theDeadlineHoldsWhenTheOperationIgnoresCancellation() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: StoreDeadline.Exceeded.self) {
            try await StoreDeadline.run(.milliseconds(100), operation: "stuck") { () async throws -> Int in
                // A detached task does not inherit the cancellation: this wait runs its 20 s whatever happens.
                await Task.detached { try? await Task.sleep(for: .seconds(20)) }.value
                return 0
            }
        }
        #expect(clock.now - start >= .milliseconds(100))
        #expect(clock.now - start < .seconds(10), "returned at the deadline, not when the operation ended")
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingTheCallerEndsTheWait() async throws {
        let caller = Task {
            try await StoreDeadline.run(.seconds(600), operation: "long") { () async throws -> Int in
                try await Task.sleep(for: .seconds(600))
                return 0
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
    }

    /// A server that answers other operations (busy, not down) keeps a slow one waiting past the silence
    /// limit: a queue for the pool's connections is not an outage.
    @Test(.timeLimit(.minutes(1)))
    func aServerThatAnswersOthersKeepsAnOperationWaiting() async throws {
        let patience = ServerSilence(silence: .milliseconds(300), ceiling: .seconds(30))
        let others = OtherOperations(answering: patience)
        defer { others.stop() }
        let value = try await StoreDeadline.run(patience, since: .now(), operation: "queued") {
            try await Task.sleep(for: .seconds(1))
            return 7
        }
        #expect(value == 7)
    }

    /// A server that answers nothing: the operation gives up at the silence limit, though it ignores
    /// cancellation and would take 20 s.
    @Test(.timeLimit(.minutes(1)))
    func aSilentServerEndsTheWaitAtTheSilenceLimit() async throws {
        let waited = await Self.timeToGiveUp(ServerSilence(silence: .milliseconds(200), ceiling: .seconds(30)))
        #expect(waited >= .milliseconds(190) && waited < .seconds(10), "gave up after \(waited)")
    }

    /// Answers to others keep an operation waiting only up to the ceiling.
    @Test(.timeLimit(.minutes(1)))
    func theCeilingEndsAWaitWhileOthersAreAnswered() async throws {
        let patience = ServerSilence(silence: .milliseconds(100), ceiling: .milliseconds(500))
        let others = OtherOperations(answering: patience)
        defer { others.stop() }
        let waited = await Self.timeToGiveUp(patience)
        #expect(waited >= .milliseconds(490) && waited < .seconds(10), "gave up after \(waited)")
    }

    /// How long an operation that ignores cancellation and would take 20 s waits before it gives up.
    static func timeToGiveUp(_ patience: ServerSilence) async -> Duration {
        let clock = ContinuousClock()
        let began = clock.now
        await #expect(throws: StoreDeadline.Exceeded.self) {
            try await StoreDeadline.run(patience, since: .now(), operation: "stuck") { () async throws -> Int in
                await Task.detached { try? await Task.sleep(for: .seconds(20)) }.value
                return 0
            }
        }
        return clock.now - began
    }

    /// How much longer an operation begun at `start` would wait; zero once it would give up.
    static func waitLeft(_ patience: ServerSilence, since start: NIODeadline) -> Duration {
        if case .wait(let left) = patience.verdict(since: start, priority: .medium) { return left }
        return .zero
    }

    /// The answer came in time, but the process was too busy to run it before the silence limit: the
    /// operation returns the answer, it does not give up; an operation that has no answer gives up once the
    /// process has caught up, not while it is behind. Staged with the executor's threads blocked, one
    /// task each, from just before the answer comes until well past the silence limit (a test run of every
    /// PostgreSQL case at once in one debug process on two cores fell behind so by seconds).
    @Test(.timeLimit(.minutes(1)))
    func anAnswerTheProcessHasNotRunYetIsNotSilence() async throws {
        let silence = Duration.milliseconds(200)
        let patience = ServerSilence(silence: silence, ceiling: .seconds(30))
        let answer = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
        let clock = ContinuousClock()
        let operation = Task {
            try await StoreDeadline.run(patience, since: .now(), operation: "answered while behind") {
                await withCheckedContinuation { continuation in answer.withLockedValue { $0 = continuation } }
                return clock.now
            }
        }
        let waiting = NIOLockedValueBox(false)
        // When the unanswered operation gave up: its work is cancelled then, from the deadline's timer (the
        // caller itself resumes only once the executor runs again).
        let gaveUp = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        let unanswered = Task {
            try await StoreDeadline.run(patience, since: .now(), operation: "never answered") { () async throws -> Int in
                waiting.withLockedValue { $0 = true }
                await withTaskCancellationHandler {
                    await Task.detached { try? await Task.sleep(for: .seconds(20)) }.value
                } onCancel: {
                    gaveUp.withLockedValue { $0 = clock.now }
                }
                return 0
            }
        }
        while answer.withLockedValue({ $0 == nil }) || !waiting.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }

        // One blocking task per thread of the executor. A thread of its own (not a task: the tasks cannot
        // run) waits until every blocker runs, then delivers the answer, as the driver does from its event
        // loop, waits past the silence limit, and releases the blockers.
        // The runtime's pool has a thread per CPU online (activeProcessorCount may count a CPU quota instead).
        let threads = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let blocking = BlockedThreads(count: threads)
        let released = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
        let stager = Thread {
            let allBlocked = blocking.waitUntilAllRun(within: 10)
            // The silence starts again here, inside the blocked stretch, however long the set-up took: as
            // if the server had answered another operation just now.
            patience.answered()
            answer.withLockedValue { $0 }?.resume()
            Thread.sleep(forTimeInterval: allBlocked ? 0.6 : 0)
            released.withLockedValue { $0 = clock.now }
            blocking.release()
        }
        for _ in 0..<threads { Task { blocking.block() } }
        stager.start()

        let ranAt = try await operation.value
        await #expect(throws: StoreDeadline.Exceeded.self) { try await unanswered.value }
        let gaveUpAt = try #require(gaveUp.withLockedValue { $0 })
        let releasedAt = try #require(released.withLockedValue { $0 })
        #expect(gaveUpAt >= releasedAt, "gave up while the process was behind")
        #expect(gaveUpAt - releasedAt < .seconds(20), "gave up once the process caught up, not at the 30 s ceiling")
        // The premise: the answer ran only once the executor's threads were free again, after the silence limit.
        #expect(ranAt >= releasedAt, "the answer ran while the executor was to be blocked: more threads than \(threads)?")
    }

    /// An error the server sent (a constraint, a conflict) is an answer: the server is there. An error that
    /// means it cannot be reached is not.
    @Test(.timeLimit(.minutes(1)))
    func anErrorFromTheServerCountsAsAnAnswerAndAnUnreachableOneDoesNot() async throws {
        // A silence of 3 s and a first call after 1 s: with 1 s and 600 ms, a loaded test run reached the
        // first call after the silence had passed.
        let patience = ServerSilence(silence: .seconds(3), ceiling: .seconds(30))
        let start = NIODeadline.now()
        let metrics = StoreMetrics(
            backend: "postgres", factory: nil, patience: patience,
            unavailable: { error in (error as? StoreError) == .conflict("down") ? "unreachable" : nil })
        try await Task.sleep(for: .seconds(1))
        await #expect(throws: StoreError.unavailable("unreachable")) {
            try await metrics.measure("key.lookup") { () async throws -> Int in throw StoreError.conflict("down") }
        }
        let unanswered = Self.waitLeft(patience, since: start)
        #expect(unanswered < .milliseconds(2_500), "an unreachable server is no answer: the silence runs from the start")
        let answering = NIODeadline.now()
        await #expect(throws: StoreError.conflict("taken")) {
            try await metrics.measure("key.lookup") { () async throws -> Int in throw StoreError.conflict("taken") }
        }
        let answered = Self.waitLeft(patience, since: start)
        // Counted from the answer, what is left and what has passed since make up the whole 3 s; counted from
        // the start (1 s before), at most 2 s. (Judged so, a loaded machine's delays do not count.)
        let sinceAnswering = Duration.nanoseconds((NIODeadline.now() - answering).nanoseconds)
        #expect(answered + sinceAnswering > .milliseconds(2_950), "the server's own error restarts the silence")
    }
}

/// Other operations of the store that the server answers, every 10 ms, on a thread of their own: a task
/// could be starved for longer than the silence limit by the tests running beside it.
final class OtherOperations: Sendable {
    private let stopped = NIOLockedValueBox(false)

    init(answering patience: ServerSilence) {
        let thread = Thread { [stopped] in
            while !stopped.withLockedValue({ $0 }) {
                patience.answered()
                Thread.sleep(forTimeInterval: 0.01)
            }
        }
        thread.start()
    }

    func stop() { stopped.withLockedValue { $0 = true } }
}

/// Tasks that block the thread they run on until released (at most 10 s), and a count of those running.
final class BlockedThreads: Sendable {
    private let count: Int
    private let running = NIOLockedValueBox(0)
    private let released = NIOLockedValueBox(false)

    init(count: Int) { self.count = count }

    /// Spins rather than sleeps: a pool thread that sleeps may look idle to the runtime's pool, which can
    /// then start another.
    func block() {
        running.withLockedValue { $0 += 1 }
        let until = Date().addingTimeInterval(10)
        while !released.withLockedValue({ $0 }) && Date() < until {}
    }

    /// Whether all `count` blockers are running within `seconds`.
    func waitUntilAllRun(within seconds: TimeInterval) -> Bool {
        let until = Date().addingTimeInterval(seconds)
        while running.withLockedValue({ $0 }) < count {
            guard Date() < until else { return false }
            Thread.sleep(forTimeInterval: 0.001)
        }
        return true
    }

    func release() { released.withLockedValue { $0 = true } }
}
