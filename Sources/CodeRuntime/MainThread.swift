import CConcurrencyHook
import Foundation

/// The entry point of a program whose `main` is synchronous: runs `program` from a task on the main actor,
/// as an async `main` runs its top-level code, and exits the process with status 0 when it returns (a
/// command that fails exits by itself, as ArgumentParser's `main` does). The main thread serves the main
/// queue meanwhile, which is how the task starts and ends: a program that runs at all has its main queue
/// served.
///
/// Why not an async `main`: it hands the main queue over with `dispatch_main()`, which ends the main thread
/// with `pthread_exit`, and that forced unwind reads the unwind tables of every frame below it
/// (Sources/CConcurrencyHook/include/ConcurrencyHook.h says what it cost).
public func runServingMainQueue(_ program: @escaping @Sendable () async -> Void) -> Never {
    Task { @MainActor in
        await program()
        exit(0)
    }
    code_serve_main_queue()
}
