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
/// - NIO's hook reads `MultiThreadedEventLoopGroup.singleton` for every job, and so retains and releases
///   that one object from every loop's thread: an atomic on a cache line the cores take from each other.
///   A request enqueues dozens of jobs (every call into a nonisolated async function from a job the loop
///   runs is one, docs/performance.md), and that retain was 2.9 % of the CPU of a `/health/live`. Here
///   each loop's thread is marked once, and a job enqueued on a marked thread goes to that thread's own
///   loop without the group being touched.
/// As in NIO, the job goes to the current loop when enqueued from one, else to the next loop.
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
            hook.baseAddress!.initialize(to: { job, _ in
                // Only the singleton's loops are marked: a loop of another group (a client's, a test's) may be
                // shut down while jobs are still enqueued on it, the singleton's never is.
                if code_thread_is_global_executor_loop(), let loop = MultiThreadedEventLoopGroup.currentEventLoop {
                    loop.enqueue(ExecutorJob(job))
                } else {
                    MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
                }
            })
            // A thin function is one pointer: that pointer is the hook's value.
            return hook.baseAddress!.withMemoryRebound(to: UnsafeRawPointer.self, capacity: 1) { pointer in
                code_install_swift_task_enqueue_global_hook(pointer.pointee)
            }
        }
        // Until its loop has run this, a thread's jobs take the path through the group, which is as correct.
        for loop in MultiThreadedEventLoopGroup.singleton.makeIterator() {
            loop.execute { code_mark_thread_as_global_executor_loop() }
        }
        return installed
    }
}
