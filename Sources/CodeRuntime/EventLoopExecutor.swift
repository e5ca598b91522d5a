import CConcurrencyHook
import NIOCore
import NIOPosix

/// Runs Swift concurrency's global jobs on NIO's event loops (`MultiThreadedEventLoopGroup.singleton`,
/// the threads Hummingbird serves the sockets on) instead of in the concurrency runtime's own pool.
///
/// Why: with two pools, every request crossed between them several times (the socket's read handed to
/// the handler's task, the response handed back to the loop), and each crossing woke a thread: the CPU
/// profile of code-api under load spent more time in futex waits, wake-ups and context switches than in
/// the handlers. With the loops as the global executor a job enqueued from a loop stays on that loop.
///
/// This is SwiftNIO's own `NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()`
/// (which Vapor's template calls first thing in `main`), with two differences:
/// - NIO finds the runtime's hook with dlsym, which fails in a binary linked with --static-swift-stdlib,
///   as the images' are; the hook is set through a reference the linker resolves instead
///   (Sources/CConcurrencyHook).
/// - A job enqueued on one of the loops' threads is kept in a list of that thread's own, and the loop runs
///   the list's jobs from one task, in the order they were enqueued (relative to each other: a loop task
///   scheduled after the list's first job may now run after the whole list). A request enqueues dozens of
///   jobs (every call into a nonisolated async function from a job the loop runs is one: 48 for a
///   `/health/live`, 127 for a GET by id), and NIO's hook gave each its own task in the loop's locked
///   queue, with the group (`MultiThreadedEventLoopGroup.singleton`) retained and released each time, an
///   atomic on a cache line both cores took from each other. Measured side by side: 17 % less CPU per
///   `/health/live` and 20 % less per GET by id (docs/performance.md, fifteenth round).
///   The reordering is a hazard for NIO code that relies on a job running after a task scheduled before
///   it, as `NIOAsyncWriter` does when a task's write from another loop is scheduled and its next write is
///   made inline: keep the window narrow (the jobs a list's own jobs enqueue get a loop task of their own),
///   and measure a change to it with code-mcp's concurrent shapes, whose broken responses `make bench`
///   counts as errors (docs/performance.md, twenty-third round).
/// As in NIO, the job goes to the current loop when enqueued from one, else to the next loop, and runs
/// there as that loop's `SerialExecutor`.
///
/// The rule that comes with it: nothing may block a loop for long. The SQLite store's reads run on the
/// calling thread (short, they never wait for the write lock in WAL mode); its writes, which can wait
/// for the write lock, run on GRDB's own queues; PostgreSQL is NIO already.
enum EventLoopExecutor {
    private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

    /// Whether the loops are the global executor of this process. Installed once, the first time it is
    /// read (a static is initialised once, atomically), before the service's work starts.
    static let isInstalled: Bool = install()

    private static func install() -> Bool {
        let installed = withUnsafeTemporaryAllocation(of: EnqueueGlobalHook.self, capacity: 1) { hook -> Bool in
            hook.baseAddress!.initialize(to: { job, _ in EventLoopExecutor.enqueue(job) })
            // A thin function is one pointer: that pointer is the hook's value.
            return hook.baseAddress!.withMemoryRebound(to: UnsafeRawPointer.self, capacity: 1) { pointer in
                code_install_swift_task_enqueue_global_hook(pointer.pointee)
            }
        }
        // Until its loop has run this, a thread's jobs take the path through the group, which leads to the
        // same loop.
        if installed {
            for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
                loop.execute { code_mark_thread_as_global_executor_loop() }
            }
        }
        return installed
    }

    /// The hook's body. Called through the type's name from the hook's closure: written as a bare
    /// `enqueue(job)` there, Swift 6.3.1's region-based isolation checker crashes.
    private static func enqueue(_ job: UnownedJob) {
        // Only the singleton's loops are marked: a loop of another group (a client's, a test's) may be shut
        // down while jobs are still enqueued on it, the singleton's never is.
        guard code_thread_is_global_executor_loop() else {
            MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
            return
        }
        // An `UnownedJob` is the job's pointer (`unsafeBitCast` traps if the sizes ever differ).
        if code_append_pending_job(unsafeBitCast(job, to: UnsafeMutableRawPointer.self)) {
            MultiThreadedEventLoopGroup.currentEventLoop!.execute { runPendingJobs() }
        }
    }

    /// Runs, on a loop's thread, the jobs enqueued on that thread since the last time, in order. Jobs they
    /// enqueue in turn are run by the next call, which the first of them schedules.
    private static func runPendingJobs() {
        let executor = MultiThreadedEventLoopGroup.currentEventLoop!.executor.asUnownedSerialExecutor()
        var jobs: UnsafePointer<UnsafeMutableRawPointer>?
        let count = code_take_pending_jobs(&jobs)
        for index in 0..<count {
            unsafeBitCast(jobs![index], to: UnownedJob.self).runSynchronously(on: executor)
        }
    }
}
