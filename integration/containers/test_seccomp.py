"""The seccomp allowlist (compose/seccomp/code-services.json): its shape, a probe container under it
showing that dangerous system calls fail with EPERM (and that without it they reach the kernel), and
a crash backtrace that still works under it."""
import json
import os

import pytest

from .stacks import PROFILE, ROOT, SERVICES, docker, hardening_args, image_tag, run, seccomp_profile, wait_for

# The calls issue 6 names, and a few more of the same kind (scripts/seccomp/probe.c).
MUST_FAIL = ["mount", "umount2", "pivot_root", "unshare", "setns", "clone(CLONE_NEWUSER)", "ptrace", "process_vm_writev",
             "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "init_module", "finit_module", "kexec_load",
             "reboot", "swapon", "clock_settime", "settimeofday", "userfaultfd", "io_uring_setup", "open_by_handle_at",
             "personality", "chroot", "socket(AF_PACKET)"]
EPERM, ENOSYS = 1, 38
# scripts/seccomp/derive.py runs the suite with an audit variant of the profile (log instead of
# refuse) to find missing calls; the probe tests check the profile file itself and do not apply.
audit_run = pytest.mark.skipif(bool(os.environ.get("CODE_E2E_SECCOMP_PROFILE")), reason="seccomp audit run (derive.py)")


def probe(image, profile):
    result = run(["docker", "run", "--rm", *hardening_args(profile), image], timeout=120)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert lines[-1].get("done") == len(lines) - 1, lines[-1]
    return {line["call"]: line for line in lines[:-1]}


def profile():
    return json.loads(PROFILE.read_text())


def allowed(document):
    return {name for rule in document["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for name in rule["names"]}


@audit_run
def test_profile_is_an_allowlist_for_x86_64_and_aarch64():
    document = profile()
    assert document["defaultAction"] == "SCMP_ACT_ERRNO" and document["defaultErrnoRet"] == EPERM
    arches = {entry["architecture"]: entry["subArchitectures"] for entry in document["archMap"]}
    assert set(arches) == {"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"}, arches
    names = allowed(document)
    dangerous = {"mount", "umount2", "unshare", "setns", "ptrace", "keyctl", "add_key", "bpf", "perf_event_open", "init_module",
                 "finit_module", "kexec_load", "reboot", "swapon", "pivot_root", "clock_settime", "userfaultfd", "chroot",
                 "process_vm_writev", "process_vm_readv", "io_uring_setup", "clone3", "personality", "open_by_handle_at"}
    assert not names & dangerous, names & dangerous
    assert len(names) < 120, len(names)
    clone = [rule for rule in document["syscalls"] if rule["names"] == ["clone"]]
    assert clone and clone[0]["args"][0]["op"] == "SCMP_CMP_MASKED_EQ" and clone[0]["args"][0]["value"] == 0x7E020000, clone
    sockets = sorted(rule["args"][0]["value"] for rule in document["syscalls"] if rule["names"] == ["socket"])
    assert sockets and 17 not in sockets, sockets


@audit_run
def test_probe_under_our_profile_gets_eperm_for_every_dangerous_call(probe_image):
    results = probe(probe_image, PROFILE)
    assert results["getpid"]["result"] > 0, "the probe itself runs"
    wrong = {call: results[call]["error"] or results[call]["result"] for call in MUST_FAIL if results[call]["errno"] != EPERM}
    assert not wrong, f"not EPERM under our profile: {wrong}"
    assert results["clone3"]["errno"] == ENOSYS, "clone3 answers ENOSYS so that glibc falls back to clone"


@audit_run
def test_probe_without_a_filter_reaches_the_kernel(probe_image):
    """The same probe with every other hardening option but no seccomp filter: the calls reach the
    kernel and get its answers, so the EPERM above is the profile's doing."""
    results = probe(probe_image, "unconfined")
    differs = {call: results[call]["error"] or results[call]["result"] for call in MUST_FAIL if results[call]["errno"] != EPERM}
    for call in ("mount", "unshare", "setns", "ptrace", "keyctl", "add_key", "bpf", "perf_event_open", "clock_settime", "userfaultfd"):
        assert call in differs, f"{call} got EPERM without a filter: the probe could not tell"
    assert results["unshare"]["result"] == 0 and results["ptrace"]["error"] == "ESRCH" and results["setns"]["error"] == "EBADF"


@audit_run
def test_our_profile_is_stricter_than_dockers_default(probe_image, measurements):
    default = probe(probe_image, None)
    ours = probe(probe_image, PROFILE)
    stricter = sorted(call for call in MUST_FAIL if ours[call]["errno"] == EPERM and default[call]["errno"] != EPERM)
    # Docker's default lets ptrace (kernel >= 4.8), io_uring_setup and personality queries through.
    assert {"ptrace", "io_uring_setup", "personality"} <= set(stricter), stricter
    measurements.append(f"seccomp: {len(allowed(profile()))} names allowed in our profile (x86_64 and aarch64 spellings); "
                        f"calls the probe gets through Docker's default but not ours: {', '.join(stricter)}")


def output(container):
    result = docker("logs", container, check=False)
    return result.stdout + result.stderr


def crash_report(*extra):
    """code-api under the hardening and the profile, killed with SIGSEGV: the backtrace it prints."""
    container = run(["docker", "run", "-d", *hardening_args(seccomp_profile()), *extra, "-e", "DATABASE_URL=sqlite:///tmp/crash.db",
                     f"{SERVICES['api']}:{image_tag()}"]).stdout.strip()
    try:
        wait_for(lambda: docker("exec", container, "/app/service", "--health-check", check=False).returncode == 0,
                 timeout=60, interval=0.5, what="the api ready")
        docker("kill", "--signal", "SEGV", container)
        return wait_for(lambda: (lambda out: out if "Backtrace took" in out else None)(output(container)), timeout=90, what="the backtrace")
    finally:
        docker("rm", "-f", container, check=False)


def test_crash_backtrace_works_under_the_profile(docker_engine, symbols_file):
    """SIGSEGV: the Swift runtime's crash handler spawns swift-backtrace-static (clone + execve),
    which reads the crashed process through the handler's memory server, not ptrace. The binary is
    stripped; its published symbols (code-services.debug) name the frames offline."""
    logs = crash_report()
    assert "Program crashed" in logs and "crashed:" in logs, logs[-2000:]
    # The loaded images (the memory server read the crashed process's maps), the binary's build id
    # among them, and frames in the binary.
    assert "Images:" in logs and "/app/service" in logs, logs[-3000:]
    assert "operation not permitted" not in logs.lower(), logs[-2000:]
    assert [line for line in logs.splitlines() if " in service" in line], logs[-3000:]
    # Offline, as docs/containers.md says: scripts/symbolicate.py checks that the debug file's build id
    # is the crashed binary's and names each frame of the binary with addr2line.
    named = run([str(ROOT / "scripts" / "symbolicate.py"), str(symbols_file)], input=logs, timeout=120).stdout
    functions = [line for line in named.splitlines() if line.strip().startswith("= ") and not line.strip().startswith("= ??")]
    assert functions, named[-3000:]


def test_crash_backtrace_names_functions_with_the_symbols_mounted(docker_engine, symbols_file):
    """With code-services.debug next to the binary (its .gnu_debuglink), the backtracer names the
    frames itself (for a debugging session; the images do not ship it)."""
    logs = crash_report("-v", f"{symbols_file}:/app/code-services.debug:ro")
    frames = [line for line in logs.splitlines() if " in service" in line and "<unknown>" not in line]
    assert frames, logs[-3000:]
