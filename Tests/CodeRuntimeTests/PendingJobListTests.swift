import CConcurrencyHook
import Foundation
import Testing

/// The per-thread list of jobs behind CodeRuntime's `EventLoopExecutor` (Sources/CConcurrencyHook): what
/// the executor relies on, checked with stand-in pointers (the list only stores them). Each check runs on
/// a thread of its own, whose lists start empty; the concurrency runtime's threads are shared by the tests.
@Suite("Pending job lists")
struct PendingJobListTests {
    @Test func onlyTheFirstJobIntoAnEmptyListAsksForARunAndATakeEmptiesIt() async {
        let (firstAsks, secondAsks, taken, takenAgain, askAfterTake) = await onAThreadOfItsOwn {
            let first = code_append_pending_job(Self.job(1))
            let second = code_append_pending_job(Self.job(2))
            let taken = Self.take()
            let takenAgain = Self.take()
            let askAfterTake = code_append_pending_job(Self.job(3))
            return (first, second, taken, takenAgain, askAfterTake)
        }
        #expect(firstAsks)
        #expect(!secondAsks)
        #expect(taken == [Self.address(1), Self.address(2)])
        #expect(takenAgain.isEmpty)
        #expect(askAfterTake, "after a take the list is empty again, so its next job asks for a run")
    }

    /// The lists start with room for 256 jobs and grow; a list being run must stay where it is while jobs
    /// that its jobs enqueue grow the other one.
    @Test func orderHoldsAcrossGrowthAndATakenListStaysPutWhileTheOtherGrows() async {
        let (asked, taken, intact, next) = await onAThreadOfItsOwn {
            let asked = (1...1_000).map { code_append_pending_job(Self.job($0)) }
            var jobs: UnsafePointer<UnsafeMutableRawPointer>?
            let count = code_take_pending_jobs(&jobs)
            let taken = (0..<count).map { UInt(bitPattern: jobs![$0]) }
            // While "running" the taken list, jobs go into the other list, which grows past its room.
            for index in 1_001...1_600 { _ = code_append_pending_job(Self.job(index)) }
            let intact = (0..<count).map { UInt(bitPattern: jobs![$0]) }
            return (asked, taken, intact, Self.take())
        }
        #expect(asked.first == true)
        #expect(asked.dropFirst().allSatisfy { !$0 })
        #expect(taken == (1...1_000).map(Self.address))
        #expect(intact == taken)
        #expect(next == (1_001...1_600).map(Self.address))
    }

    /// The stand-in for job `number`, and its address (what the checks compare: pointers are not `Sendable`).
    private static func job(_ number: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: address(number))! }
    private static func address(_ number: Int) -> UInt { UInt(number) * 16 }

    private static func take() -> [UInt] {
        var jobs: UnsafePointer<UnsafeMutableRawPointer>?
        let count = code_take_pending_jobs(&jobs)
        return (0..<count).map { UInt(bitPattern: jobs![$0]) }
    }

    private func onAThreadOfItsOwn<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }
}
