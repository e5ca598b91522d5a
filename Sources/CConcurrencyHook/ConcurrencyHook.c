#include "ConcurrencyHook.h"

// Declared by the Swift runtime (swift/Runtime/Concurrency.h) as a function pointer; only its address
// is used here, so a pointer-sized object is all this file needs to know.
extern const void *swift_task_enqueueGlobal_hook;

bool code_install_swift_task_enqueue_global_hook(const void *hook) {
    const void *expected = 0;
    return __atomic_compare_exchange_n(&swift_task_enqueueGlobal_hook, &expected, hook, false, __ATOMIC_SEQ_CST,
                                       __ATOMIC_SEQ_CST);
}

static _Thread_local bool threadIsGlobalExecutorLoop;

void code_mark_thread_as_global_executor_loop(void) { threadIsGlobalExecutorLoop = true; }

bool code_thread_is_global_executor_loop(void) { return threadIsGlobalExecutorLoop; }
