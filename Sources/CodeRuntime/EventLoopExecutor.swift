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
/// (which Vapor's template calls first thing in `main`), with one difference: NIO finds the runtime's
/// hook with dlsym, which fails in a binary linked with --static-swift-stdlib, as the images' are; the
/// hook is set through a reference the linker resolves instead (Sources/CConcurrencyHook). Everything
/// else is NIO's: the job goes to the current loop when called from one, else to the next loop, through
/// the loop's public `SerialExecutor` conformance.
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
        withUnsafeTemporaryAllocation(of: EnqueueGlobalHook.self, capacity: 1) { hook -> Bool in
            hook.baseAddress!.initialize(to: { job, _ in
                MultiThreadedEventLoopGroup.singleton.any().executor.enqueue(job)
            })
            // A thin function is one pointer: that pointer is the hook's value.
            return hook.baseAddress!.withMemoryRebound(to: UnsafeRawPointer.self, capacity: 1) { pointer in
                code_install_swift_task_enqueue_global_hook(pointer.pointee)
            }
        }
    }
}
