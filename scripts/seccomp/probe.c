/*
 * seccomp probe: calls dangerous system calls with harmless arguments and prints one JSON line per
 * call with its result, so that a test can compare the answers under different profiles.
 *
 * Under compose/seccomp/code-services.json every call below must fail with EPERM (the profile's
 * default action), except clone3, which the profile answers with ENOSYS on purpose. Without a
 * seccomp filter most of them reach the kernel and get a different answer (EFAULT, EBADF, ESRCH,
 * EINVAL, 0, ...): the arguments are chosen for that, so that the test can tell "blocked by the
 * filter" from "refused by the kernel" and cannot pass without the profile. Nothing here changes
 * any state: the pointers are invalid, the ids do not exist, the flags are no-ops.
 *
 * Built statically (no libc needed in the image): scripts/seccomp/Dockerfile.
 * Usage: probe            all calls, one JSON object per line, then {"done": N}
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_userfaultfd
#define SYS_userfaultfd 323
#endif

#define BAD_POINTER ((void *)1)

static int count;

static void report(const char *name, long result, int error) {
    printf("{\"call\": \"%s\", \"result\": %ld, \"errno\": %d, \"error\": \"%s\"}\n",
           name, result, result == -1 ? error : 0, result == -1 ? strerrorname_np(error) : "");
    fflush(stdout);
    count++;
}

#define PROBE(name, ...)                                   \
    do {                                                   \
        errno = 0;                                         \
        long result_ = syscall(__VA_ARGS__);               \
        report(name, result_, errno);                      \
    } while (0)

int main(void) {
    /* A call every profile allows: proves the probe ran at all. */
    PROBE("getpid", SYS_getpid);

    /* Mounting: dev_name is an invalid pointer, so the kernel answers EFAULT when it gets the call. */
    PROBE("mount", SYS_mount, BAD_POINTER, "/tmp", "tmpfs", 0UL, NULL);
    PROBE("umount2", SYS_umount2, BAD_POINTER, 0);
    PROBE("pivot_root", SYS_pivot_root, BAD_POINTER, BAD_POINTER);
    /* Namespaces: unshare(0) and setns(-1) change nothing (0 and EBADF from the kernel). */
    PROBE("unshare", SYS_unshare, 0);
    PROBE("setns", SYS_setns, -1, 0);
    /* clone with a namespace flag (the child would exit at once; the filter refuses the flag). */
    {
        errno = 0;
        long child = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0UL);
        if (child == 0) _exit(0);
        int error = errno;
        if (child > 0) waitpid((pid_t)child, NULL, 0);
        report("clone(CLONE_NEWUSER)", child > 0 ? 0 : child, error);
    }
    /* clone3 with a NULL argument: EFAULT from the kernel, ENOSYS from the profile. */
    PROBE("clone3", SYS_clone3, NULL, 0UL);
    /* Tracing another process: pid 2147483647 does not exist (ESRCH). */
    PROBE("ptrace", SYS_ptrace, PTRACE_ATTACH, 2147483647, NULL, NULL);
    PROBE("process_vm_writev", SYS_process_vm_writev, 2147483647, NULL, 0UL, NULL, 0UL, 0UL);
    /* Kernel keyrings: an unknown keyctl command (EOPNOTSUPP), add_key with an invalid type (EFAULT). */
    PROBE("keyctl", SYS_keyctl, 0x7fff, 0, 0, 0, 0);
    PROBE("add_key", SYS_add_key, BAD_POINTER, "x", NULL, 0UL, KEY_SPEC_PROCESS_KEYRING);
    PROBE("request_key", SYS_request_key, BAD_POINTER, "x", NULL, KEY_SPEC_PROCESS_KEYRING);
    /* eBPF and perf: an invalid attribute pointer. */
    PROBE("bpf", SYS_bpf, 0, BAD_POINTER, 64U);
    PROBE("perf_event_open", SYS_perf_event_open, BAD_POINTER, 0, -1, -1, 0UL);
    /* Kernel modules, kexec, reboot, swap: capability checks come first in the kernel (EPERM either
     * way without CAP_SYS_MODULE / CAP_SYS_BOOT / CAP_SYS_ADMIN), listed for completeness. */
    PROBE("init_module", SYS_init_module, BAD_POINTER, 0UL, "");
    PROBE("finit_module", SYS_finit_module, -1, "", 0);
    PROBE("kexec_load", SYS_kexec_load, 0UL, 0UL, NULL, 0UL);
    PROBE("reboot", SYS_reboot, 0, 0, 0, NULL);
    PROBE("swapon", SYS_swapon, BAD_POINTER, 0);
    /* The clock: an invalid clock id (EINVAL). */
    PROBE("clock_settime", SYS_clock_settime, 0x7fff, BAD_POINTER);
    PROBE("settimeofday", SYS_settimeofday, BAD_POINTER, NULL);
    /* userfaultfd, user-mode only (allowed to unprivileged processes): a descriptor from the kernel. */
    PROBE("userfaultfd", SYS_userfaultfd, 1 /* UFFD_USER_MODE_ONLY */);
    /* io_uring and file handles. */
    PROBE("io_uring_setup", SYS_io_uring_setup, 1, BAD_POINTER);
    PROBE("open_by_handle_at", SYS_open_by_handle_at, -1, BAD_POINTER, 0);
    PROBE("personality", SYS_personality, 0xffffffffUL);
    PROBE("chroot", SYS_chroot, BAD_POINTER);
    /* A raw packet socket (AF_PACKET): not a domain the services use. */
    PROBE("socket(AF_PACKET)", SYS_socket, 17, SOCK_RAW, 0);

    printf("{\"done\": %d}\n", count);
    return 0;
}
