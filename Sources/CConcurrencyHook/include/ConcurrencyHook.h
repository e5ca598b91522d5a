#ifndef CODE_CONCURRENCY_HOOK_H
#define CODE_CONCURRENCY_HOOK_H

#include <stdbool.h>
#include <stddef.h>

/// Sets the Swift runtime's global-enqueue hook (`swift_task_enqueueGlobal_hook`) to `hook` if no hook
/// is set yet; returns whether it was set. `hook` is a thin Swift function
/// `(UnownedJob, (UnownedJob) -> Void) -> Void` (Swift calling convention), passed as a pointer.
///
/// Why C: SwiftNIO installs the same hook by looking the variable up with dlsym, which finds nothing in
/// a binary linked with --static-swift-stdlib (the toolchain links the runtime's archives with
/// --exclude-libs ALL, so the variable is not in the dynamic symbol table). Referring to it by name here
/// resolves it when the binary is linked, statically or not.
bool code_install_swift_task_enqueue_global_hook(const void *_Nonnull hook);

/// Marks the calling thread as one of the event loops that run global jobs (set once on each loop's own
/// thread). A flag of the thread's own, so that the hook can tell it runs on such a loop without touching
/// any object the other threads touch too.
void code_mark_thread_as_global_executor_loop(void);

/// Whether `code_mark_thread_as_global_executor_loop` was called on this thread.
bool code_thread_is_global_executor_loop(void);

/// Appends a job to this thread's pending jobs; returns true when there were none before, and the caller
/// then has its loop run `code_take_pending_jobs` and the jobs it returns.
bool code_append_pending_job(void *_Nonnull job);

/// Takes this thread's pending jobs, in the order they were appended, and starts a new list for the jobs
/// appended from now on. `*jobs` stays valid until the thread's next take.
size_t code_take_pending_jobs(void *_Nonnull const *_Nullable *_Nonnull jobs);

/// Runs the main dispatch queue (the main actor's executor) on the calling thread, which must be the main
/// thread, as its jobs arrive; never returns. The process ends with `exit`.
///
/// Why: a program with an async `main` hands the main queue over with `dispatch_main()`, which ends the
/// main thread with `pthread_exit`. Its forced unwind walks the main thread's frames through the unwind
/// tables, a binary search over `.eh_frame_hdr` (1.7 MiB) and the frames' `.eh_frame` entries: scattered
/// reads that left 0.7 MiB of those tables resident in every idle service (docs/performance.md). Serving
/// the queue from the thread that already exists is what CoreFoundation's run loop does, with the same
/// two entry points of libdispatch.
__attribute__((noreturn)) void code_serve_main_queue(void);

#endif
