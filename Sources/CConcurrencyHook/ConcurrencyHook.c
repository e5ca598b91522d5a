#include "ConcurrencyHook.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

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

// Two lists per thread, swapped at every take: jobs enqueued while a taken list runs go into the other one,
// so growing it can never move the array being run, and a take never allocates.
typedef struct {
    void **jobs;
    size_t count;
    size_t capacity;
} JobList;

static _Thread_local JobList pendingJobs;
static _Thread_local JobList takenJobs;

bool code_append_pending_job(void *job) {
    if (pendingJobs.count == pendingJobs.capacity) {
        size_t capacity = pendingJobs.capacity ? pendingJobs.capacity * 2 : 256;
        void **jobs = realloc(pendingJobs.jobs, capacity * sizeof(void *));
        if (!jobs) {
            // A job that cannot be kept would be a task that never resumes: stop rather than hang.
            static const char message[] = "code-services: out of memory for the event loop's pending jobs\n";
            (void)write(STDERR_FILENO, message, sizeof message - 1);
            abort();
        }
        pendingJobs.jobs = jobs;
        pendingJobs.capacity = capacity;
    }
    pendingJobs.jobs[pendingJobs.count++] = job;
    return pendingJobs.count == 1;
}

size_t code_take_pending_jobs(void *const **jobs) {
    JobList taken = pendingJobs;
    pendingJobs = takenJobs;
    pendingJobs.count = 0;
    takenJobs = taken;
    *jobs = taken.jobs;
    return taken.count;
}

// libdispatch's interface for a run loop that serves the main queue (what CoreFoundation's CFRunLoop
// uses): an eventfd written whenever the main queue gets work, and the call that runs that work.
extern int _dispatch_get_main_queue_handle_4CF(void);
extern void _dispatch_main_queue_callback_4CF(void *message);

__attribute__((noreturn)) void code_serve_main_queue(void) {
    int handle = _dispatch_get_main_queue_handle_4CF();
    for (;;) {
        struct pollfd ready = {.fd = handle, .events = POLLIN};
        int polled = poll(&ready, 1, -1);
        if (polled < 0 && errno == EINTR) {
            continue;  // a signal's handler ran on this thread
        }
        if (polled < 0 || (ready.revents & (POLLERR | POLLNVAL))) {
            // Would come back at once, every time (a seccomp profile refusing poll, a closed eventfd): stop
            // rather than spin.
            static const char message[] = "code-services: poll on the main queue's eventfd failed\n";
            (void)write(STDERR_FILENO, message, sizeof message - 1);
            abort();
        }
        // Emptied before the queue is run: work enqueued while it runs writes the eventfd again.
        uint64_t count;
        (void)read(handle, &count, sizeof count);
        _dispatch_main_queue_callback_4CF(NULL);
    }
}
