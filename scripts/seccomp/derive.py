"""Derives compose/seccomp/code-services.json, the seccomp allowlist of code-api, code-worker and
code-mcp, from traces of the end-to-end workload. Run it through scripts/seccomp/derive.sh.

Two sources, both re-run on every derivation:

1. Host traces (`trace`): the release binaries are copied out of the built images (docker create +
   docker cp) and run on this Debian 12 host (the images' glibc and libraries are Debian 12's too)
   under `strace -f`, from their first instruction, while integration/containers/workload.py drives
   the same workload as the container suite:
     - SQLite, simulated driver: every code-api route (create, replayed idempotent create, list, get,
       validate, events, manifests, cancel, keys create/list/revoke, audit, policy, OpenAPI, errors),
       code-worker's /v1/worker, a Prometheus scrape of each service, the MCP flow with the official
       Python client (initialize, tools, create_deployment with wait and progress, resources,
       prompts, DELETE), then SIGTERM and drain (exit 0 expected);
     - PostgreSQL (LISTEN/NOTIFY) with two workers on the webhook driver against a local receiver
       that answers 503 once (retry), health_url verification, the same API and MCP flows;
     - `--health-check` and `--version` of each binary, a configuration error (exit 78);
     - a crash: SIGSEGV to code-api, whose crash handler runs swift-backtrace-static.
2. Container audit (`audit`): the container suite (integration/containers) runs with the candidate
   allowlist turned into an audit profile (defaultAction SCMP_ACT_LOG): every syscall outside the
   list is allowed but logged by the kernel (dmesg, audit type 1326). This catches what only happens
   in a container: runc's last steps after it loads the filter and before it executes the entry point
   (and `docker exec` of the healthcheck), Docker's embedded DNS, read-only root file system paths.
   The kernel rate-limits those messages; derive.sh lifts printk_ratelimit for the run and restores
   it. Needs root (dmesg, sysctl).

`derive.py all` runs both and writes the profile; `derive.py trace` and `derive.py audit` run one.
The profile keeps the numbers of what each source contributed in its rule comments, and the script
prints the counts (ours, Docker's default).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "integration" / "containers"))
import workload  # noqa: E402

PROFILE = ROOT / "compose" / "seccomp" / "code-services.json"
# Every service of services.json: its binary is traced (the workload drives code-api, code-worker and
# code-mcp in depth; every service runs its one-shots) and its image's binary is extracted.
SERVICES = tuple(service["name"] for service in json.loads((ROOT / "services.json").read_text())["services"])
UNISTD_X86_64 = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
UNISTD_GENERIC = Path("/usr/include/asm-generic/unistd.h")

# clone with any namespace flag is refused, as in Docker's default profile for containers without
# CAP_SYS_ADMIN: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET = 0x7E020000.
CLONE_NAMESPACE_FLAGS = 0x7E020000
# clone3 passes its flags in a struct that seccomp cannot inspect, so like Docker we answer ENOSYS:
# glibc (2.34+) then falls back to clone, whose flags the rule above checks.
ENOSYS = 38
# socket(2) domains by number (x86_64 and aarch64 agree).
ADDRESS_FAMILIES = {"AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17}

# x86_64 system calls that aarch64 (the generic table) does not have, and what glibc calls there
# instead. aarch64 cannot be traced here (no aarch64 machine); this table keeps the profile usable
# on arm64 hosts, and derive.py checks that every mapped name exists in the generic table.
AARCH64_EQUIVALENTS = {
    "open": ["openat"], "stat": ["newfstatat"], "lstat": ["newfstatat"], "access": ["faccessat", "faccessat2"],
    "poll": ["ppoll"], "select": ["pselect6"], "pipe": ["pipe2"], "dup2": ["dup3"], "epoll_wait": ["epoll_pwait"],
    "epoll_create": ["epoll_create1"], "readlink": ["readlinkat"], "unlink": ["unlinkat"], "rmdir": ["unlinkat"],
    "mkdir": ["mkdirat"], "rename": ["renameat", "renameat2"], "chmod": ["fchmodat"], "chown": ["fchownat"],
    "getdents": ["getdents64"], "fork": ["clone"], "vfork": ["clone"], "eventfd": ["eventfd2"],
    "signalfd": ["signalfd4"], "inotify_init": ["inotify_init1"], "time": ["clock_gettime"], "alarm": ["setitimer"],
    "pause": ["ppoll"], "creat": ["openat"], "link": ["linkat"], "symlink": ["symlinkat"], "utimes": ["utimensat"],
    "getpgrp": ["getpgid"], "arch_prctl": [], "modify_ldt": [], "iopl": [], "ioperm": [], "uselib": [],
}

# Calls a correct program makes only in conditions a test cannot force, allowed so that they do not
# fail in production: the kernel restarts an interrupted sleep with restart_syscall; glibc and the
# Swift runtime yield or sleep under lock contention; realloc of a large block uses mremap.
RARE = {
    "restart_syscall": "the kernel's restart of a sleep interrupted by a signal",
    "sched_yield": "spinning locks under contention",
    "clock_nanosleep": "sleeps (traced in some runs only)",
    "mremap": "realloc of large (mmapped) blocks",
}

# Calls refused on purpose even if a trace shows them (none has shown up so far): the probe asserts
# EPERM for these.
NEVER = {"mount", "umount2", "unshare", "setns", "ptrace", "keyctl", "add_key", "request_key", "bpf",
         "perf_event_open", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
         "reboot", "swapon", "swapoff", "pivot_root", "chroot", "clock_settime", "settimeofday", "adjtimex",
         "clock_adjtime", "userfaultfd", "open_by_handle_at", "name_to_handle_at", "process_vm_writev",
         "iopl", "ioperm", "acct", "quotactl", "syslog", "personality", "io_uring_setup", "fsopen", "fsmount",
         "move_mount", "open_tree", "lookup_dcookie", "vhangup", "sethostname", "setdomainname"}

LINE = re.compile(r"^(?:\d+\s+)?(?:<\.\.\. (?P<resumed>[a-z0-9_]+) resumed>|(?P<name>[a-z0-9_]+)\()")
SOCKET = re.compile(r"\b(socket|socketpair)\((AF_[A-Z0-9]+|\d+)")
CLONE = re.compile(r"\bclone\(.*flags=(?P<flags>[A-Z0-9_|]+)")


def log(message: str) -> None:
    print(f"derive: {message}", file=sys.stderr, flush=True)


def syscall_table(header: Path) -> dict[int, str]:
    table = {}
    for match in re.finditer(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", header.read_text()):
        table[int(match.group(2))] = match.group(1)
    return table


def generic_names() -> set[str]:
    names = set(syscall_table(UNISTD_GENERIC).values())
    # asm-generic spells a few of the 64-bit ABI names through __NR3264_ macros.
    return names | {"newfstatat", "fstat", "fstatfs", "statfs", "lseek", "mmap", "fadvise64", "truncate",
                    "ftruncate", "sendfile", "fcntl"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- host traces -------------------------------------------------------------------------------


def extract_binaries(tag: str, directory: Path) -> Path:
    """Copies the release binaries (each image's /app/service) and the backtracer out of the built images."""
    directory.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        container = subprocess.run(["docker", "create", f"{service}:{tag}"], check=True, capture_output=True, text=True).stdout.strip()
        try:
            subprocess.run(["docker", "cp", f"{container}:/app/service", str(directory / service)], check=True, capture_output=True)
            if service == SERVICES[0]:
                subprocess.run(["docker", "cp", f"{container}:/app/swift-backtrace-static", str(directory / "swift-backtrace-static")], check=True, capture_output=True)
        finally:
            subprocess.run(["docker", "rm", container], check=False, capture_output=True)
    return directory


class Traced:
    """A binary under `strace -f` from its first instruction; its trace goes to a file of its own."""

    def __init__(self, bin_dir: Path, name: str, env: dict, trace_dir: Path, label: str, args=()):
        self.name = name
        self.trace = trace_dir / f"{label}.strace"
        self.log_path = trace_dir / f"{label}.log"
        self.log = open(self.log_path, "wb")
        environment = {
            "PATH": "/usr/bin:/bin", "LOG_FORMAT": "json", "LOG_LEVEL": "info",
            # As in the images (docker/Dockerfile): the crash handler runs the backtracer next to the binary.
            "SWIFT_BACKTRACE": "enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=./swift-backtrace-static",
        }
        environment.update(env)
        self.process = subprocess.Popen(
            ["strace", "-f", "-qq", "-s", "64", "-o", str(self.trace), f"./{name}", *args],
            cwd=bin_dir, env=environment, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def traced_pid(self) -> int:
        """The program's pid: strace's child (a signal to strace itself would not reach it)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0])

    def stop(self, sig=signal.SIGTERM, timeout=30.0):
        if self.process.poll() is None:
            try:
                os.kill(self.traced_pid(), sig)
            except (OSError, IndexError):
                self.process.kill()
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            status = None
        self.log.close()
        return status

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def run_service(bin_dir, trace_dir, name, label, env):
    port = free_port()
    metrics_port = free_port()
    service = Traced(bin_dir, name, {"HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": str(metrics_port), **env}, trace_dir, label)
    # --health-check and the probes below use 127.0.0.1, which a dual-stack "::" listener accepts too.
    service.url = f"http://127.0.0.1:{port}"
    service.host_url = f"http://localhost:{port}"  # resolved through getaddrinfo (/etc/hosts, NSS)
    service.metrics_url = f"http://127.0.0.1:{metrics_port}"
    service.port = port
    try:
        workload.wait_ready(service.url + "/health/ready", timeout=120)
    except Exception:
        service.stop(signal.SIGKILL)
        raise RuntimeError(f"{label} did not become ready: {service.output()[-2000:]}")
    return service


def one_shot(bin_dir, trace_dir, name, label, args, env, expected):
    process = Traced(bin_dir, name, env, trace_dir, label, args)
    try:
        status = process.process.wait(timeout=60)
    finally:
        process.log.close()
    if status != expected:
        raise RuntimeError(f"{label}: exit {status}, expected {expected}: {process.output()[-1500:]}")


def health_checks(bin_dir, trace_dir, service, label):
    one_shot(bin_dir, trace_dir, service.name, f"{label}-health-check", ["--health-check"],
             {"PORT": str(service.port), "METRICS_PORT": "0"}, 0)


def scenario_sqlite(bin_dir: Path, trace_dir: Path, secrets: dict, work: Path):
    log("scenario sqlite: api + worker (simulated) + mcp, the full workload, SIGTERM")
    database = f"sqlite://{work}/code.db"
    common = {"DATABASE_URL": database}
    # HOST "::" (dual stack): an IPv6 listener, as a deployment with HOST set to an IPv6 address has.
    api = run_service(bin_dir, trace_dir, "code-api", "sqlite-api",
                      {**common, "HOST": "::", "CODE_ADMIN_KEY_FILE": secrets["admin_key"], "CODE_MCP_API_KEY_FILE": secrets["mcp_api_key"]})
    started = [api]
    try:
        worker = run_service(bin_dir, trace_dir, "code-worker", "sqlite-worker",
                             {**common, "CODE_SIMULATED_STEP_MS": "100", "CODE_WEBHOOK_SECRET_FILE": secrets["webhook_secret"]})
        started.append(worker)
        mcp = run_service(bin_dir, trace_dir, "code-mcp", "sqlite-mcp", {
            "CODE_API_URL": api.host_url, "CODE_WORKER_URL": worker.host_url,
            "MCP_API_KEY_FILE": secrets["mcp_api_key"], "MCP_AUTH_TOKENS_FILE": secrets["mcp_auth_token"],
        })
        started.append(mcp)
        admin = Path(secrets["admin_key"]).read_text()
        workload.api_flow(api.url, admin)
        workload.worker_status(worker.url, Path(secrets["mcp_api_key"]).read_text())
        for service in started:
            workload.metrics(service.metrics_url)
        seen = workload.mcp_flow(mcp.url + "/mcp", Path(secrets["mcp_auth_token"]).read_text())
        assert seen["deployment"]["status"] == "succeeded", seen["deployment"]
        for service in started:
            health_checks(bin_dir, trace_dir, service, f"sqlite-{service.name}")
        # A deployment in flight while the worker drains.
        workload.API(api.url, admin).create(replicas=30)
        time.sleep(1)
    finally:
        statuses = {s.name: s.stop() for s in reversed(started)}
    assert all(status == 0 for status in statuses.values()), f"SIGTERM must end every service with 0: {statuses}"


def scenario_postgres(bin_dir: Path, trace_dir: Path, secrets: dict, work: Path):
    log("scenario postgres: api + two workers (webhook driver, health_url) + mcp on PostgreSQL, SIGTERM")
    admin_url = subprocess.run([str(ROOT / "scripts/test-postgres.sh"), "start"], check=True, capture_output=True, text=True).stdout.strip()
    name = f"code_seccomp_{os.getpid()}"
    subprocess.run(["psql", admin_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name}"], check=True, capture_output=True, timeout=60)
    subprocess.run(["psql", admin_url, "-q", "-c", f"CREATE DATABASE {name}"], check=True, capture_output=True, timeout=60)
    base, _, query = admin_url.partition("?")
    database = base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
    receiver = workload.WebhookReceiver(Path(secrets["webhook_secret"]).read_text())
    started = []
    try:
        api = run_service(bin_dir, trace_dir, "code-api", "pg-api",
                          {"DATABASE_URL": database, "CODE_ADMIN_KEY_FILE": secrets["admin_key"], "CODE_MCP_API_KEY_FILE": secrets["mcp_api_key"]})
        started.append(api)
        for index in (1, 2):
            started.append(run_service(bin_dir, trace_dir, "code-worker", f"pg-worker{index}", {
                "DATABASE_URL": database, "CODE_ROLLOUT_DRIVER": "webhook",
                "CODE_WEBHOOK_URL": f"http://localhost:{receiver.port}/hooks/rollout",
                "CODE_WEBHOOK_SECRET_FILE": secrets["webhook_secret"], "CODE_WEBHOOK_TIMEOUT": "5", "CODE_WEBHOOK_MAX_ATTEMPTS": "5",
                "CODE_VERIFY_INTERVAL": "0.2", "WORKER_ID": f"seccomp-worker-{index}", "CODE_HEALTH_URL_ALLOW": "localhost",
            }))
        mcp = run_service(bin_dir, trace_dir, "code-mcp", "pg-mcp", {
            "CODE_API_URL": api.host_url, "CODE_WORKER_URL": started[1].host_url,
            "MCP_API_KEY_FILE": secrets["mcp_api_key"], "MCP_AUTH_TOKENS_FILE": secrets["mcp_auth_token"],
        })
        started.append(mcp)
        admin = Path(secrets["admin_key"]).read_text()
        workload.api_flow(api.url, admin, health_url=f"http://localhost:{receiver.port}/healthz", slow_driver=False)
        api_client = workload.API(api.url, admin)
        batch = [api_client.create(replicas=1)["id"] for _ in range(6)]
        for deployment_id in batch:
            assert api_client.wait(deployment_id)["status"] == "succeeded"
        for worker in started[1:3]:
            workload.worker_status(worker.url, Path(secrets["mcp_api_key"]).read_text())
        for service in started:
            workload.metrics(service.metrics_url)
        seen = workload.mcp_flow(mcp.url + "/mcp", Path(secrets["mcp_auth_token"]).read_text())
        assert seen["deployment"]["status"] == "succeeded", seen["deployment"]
        assert receiver.deliveries and all(d["valid"] for d in receiver.deliveries), receiver.deliveries[:2]
        assert receiver.health_checks, "the worker verified health_url"
        for service in started:
            health_checks(bin_dir, trace_dir, service, f"pg-{service.name}-{service.port}")
    finally:
        statuses = {f"{s.name}:{s.port}": s.stop() for s in reversed(started)}
        receiver.close()
        subprocess.run(["psql", admin_url, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False, capture_output=True, timeout=60)
    assert all(status == 0 for status in statuses.values()), f"SIGTERM must end every service with 0: {statuses}"


def scenario_one_shots(bin_dir: Path, trace_dir: Path, work: Path):
    log("scenario one-shots: --version, a configuration error (exit 78), a crash with backtrace")
    for name in SERVICES:
        one_shot(bin_dir, trace_dir, name, f"{name}-version", ["--version"], {}, 0)
    one_shot(bin_dir, trace_dir, "code-worker", "code-worker-config-error", [], {"DATABASE_URL": "sqlite:///nonexistent/x.db", "WORKER_CONCURRENCY": "0"}, 78)
    api = run_service(bin_dir, trace_dir, "code-api", "crash-api", {"DATABASE_URL": f"sqlite://{work}/crash.db"})
    # SIGSEGV to the traced program (strace's child), not to strace.
    pid = api.traced_pid()
    os.kill(pid, signal.SIGSEGV)
    # The crash handler prints the backtrace and returns; a real fault would fault again under the
    # default action, a SIGSEGV sent with kill(2) does not, so the process is then killed.
    deadline = time.monotonic() + 120
    while "Backtrace took" not in api.output() and time.monotonic() < deadline and api.process.poll() is None:
        time.sleep(0.2)
    status = api.stop(signal.SIGKILL, timeout=30)
    output = api.output()
    if "Program crashed" not in output or " in code-api" not in output:
        raise RuntimeError(f"no named backtrace after SIGSEGV: {output[-3000:]}")


def parse_traces(trace_dir: Path):
    names = collections.Counter()
    domains = set()
    by_binary = collections.defaultdict(set)
    unknown = set()
    for trace in sorted(trace_dir.rglob("*.strace")):
        label = trace.stem
        for line in trace.read_text(errors="replace").splitlines():
            match = LINE.match(line)
            if not match:
                continue
            name = match.group("name") or match.group("resumed")
            if name.startswith("syscall_"):
                unknown.add(name)
                continue
            names[name] += 1
            service = re.search(r"(api|worker|mcp)", label)
            by_binary["code-" + service.group(1) if service else label].add(name)
            socket_match = SOCKET.search(line)
            if socket_match and socket_match.group(1) == "socket":
                domains.add(socket_match.group(2))
    return names, domains, by_binary, unknown


def trace(args) -> dict:
    work = Path(args.work)
    if work.exists():
        shutil.rmtree(work)
    trace_dir = work / "traces"
    trace_dir.mkdir(parents=True)
    bin_dir = extract_binaries(args.tag, work / "bin")
    secrets_dir = work / "secrets"
    subprocess.run([str(ROOT / "scripts/dev-secrets.sh"), str(secrets_dir)], check=True, capture_output=True)
    secrets = {name: str(secrets_dir / name) for name in ("admin_key", "mcp_api_key", "mcp_auth_token", "webhook_secret")}
    started = time.monotonic()
    per_run = []
    for number in range(1, args.runs + 1):
        run_dir = trace_dir / f"run{number}"
        run_dir.mkdir()
        log(f"host trace run {number} of {args.runs}")
        scenario_sqlite(bin_dir, run_dir, secrets, work)
        scenario_postgres(bin_dir, run_dir, secrets, work)
        scenario_one_shots(bin_dir, run_dir, work)
        per_run.append(set(parse_traces(run_dir)[0]))
    names, domains, by_binary, unknown = parse_traces(trace_dir)
    log(f"traced {sum(names.values())} calls of {len(names)} distinct system calls in {time.monotonic() - started:.0f} s "
        f"({args.runs} runs; in some runs only: {sorted(set.union(*per_run) - set.intersection(*per_run)) or 'none'})")
    if unknown:
        log(f"calls strace could not name (ignored): {sorted(unknown)}")
    for binary, calls in sorted(by_binary.items()):
        log(f"  {binary}: {len(calls)} distinct system calls")
    result = {"syscalls": sorted(names), "socket_domains": sorted(domains), "counts": dict(names),
              "by_binary": {binary: sorted(calls) for binary, calls in sorted(by_binary.items())}}
    (work / "traced.json").write_text(json.dumps(result, indent=1))
    return result


# --- container audit ---------------------------------------------------------------------------


def audit_profile(profile: dict) -> dict:
    """The same allowlist, but everything else allowed and logged instead of refused."""
    audited = json.loads(json.dumps(profile))
    audited["defaultAction"] = "SCMP_ACT_LOG"
    audited.pop("defaultErrnoRet", None)
    return audited


AUDIT_LINE = re.compile(r'type=1326 .*? comm="(?P<comm>[^"]*)" .*?arch=(?P<arch>[0-9a-f]+) syscall=(?P<nr>\d+)')


def audit(args, profile: dict) -> dict:
    """Runs the container suite under the audit variant and collects what the kernel logged."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    audit_file = work / "audit-profile.json"
    audit_file.write_text(json.dumps(audit_profile(profile), indent=1))
    # The kernel's ring buffer is small and may already be full: follow it for the run instead of
    # comparing before and after.
    kernel_log = open(work / "audit-dmesg.log", "w")
    follower = subprocess.Popen(["dmesg", "--follow-new"], stdout=kernel_log, stderr=subprocess.DEVNULL)
    env = dict(os.environ, CODE_E2E_SECCOMP_PROFILE=str(audit_file), CODE_E2E_SKIP_LINTS="1")
    pytest = Path(sys.executable).parent / "pytest"
    log(f"audit: the container suite under {audit_file} (defaultAction SCMP_ACT_LOG)")
    # The kernel prints seccomp log events through printk's rate limit (10 per 5 s): lifted for the
    # run, restored afterwards.
    ratelimit = Path("/proc/sys/kernel/printk_ratelimit")
    saved = ratelimit.read_text()
    ratelimit.write_text("0\n")
    try:
        status = subprocess.run([str(pytest), "-q", "-x", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning",
                                 str(ROOT / "integration" / "containers"), *args.pytest_args], cwd=ROOT, env=env).returncode
    finally:
        ratelimit.write_text(saved)
        time.sleep(1)
        follower.terminate()
        follower.wait(timeout=10)
        kernel_log.close()
    lines = (work / "audit-dmesg.log").read_text(errors="replace").splitlines()
    table = syscall_table(UNISTD_X86_64)
    logged = collections.defaultdict(set)
    suppressed = [line for line in lines if "callbacks suppressed" in line and "audit" in line]
    for line in lines:
        match = AUDIT_LINE.search(line)
        if match and match.group("arch") == "c000003e":
            logged[table.get(int(match.group("nr")), f"nr{match.group('nr')}")].add(match.group("comm"))
    result = {"pytest_status": status, "logged": {name: sorted(comms) for name, comms in sorted(logged.items())},
              "suppressed_lines": suppressed}
    (work / "audit.json").write_text(json.dumps(result, indent=1))
    log(f"audit: pytest exit {status}; logged outside the list: {dict(result['logged']) or 'nothing'}")
    if suppressed:
        raise SystemExit(f"derive: the kernel suppressed audit messages ({suppressed[:3]}): rerun")
    if "socket" in result["logged"]:
        raise SystemExit("derive: a socket(2) call of a domain outside the list was logged; the audit cannot see which "
                         "domain: trace it (strace -f -e trace=socket) and add it to ADDRESS_FAMILIES / the traced set")
    return result


# --- the profile -------------------------------------------------------------------------------


def build_profile(traced: dict, audited: dict | None, previous: dict | None) -> dict:
    generic = generic_names()
    x86 = set(syscall_table(UNISTD_X86_64).values())
    names = set(traced["syscalls"])
    from_audit = set((audited or {}).get("logged", {}))
    if audited is None and previous is not None:
        # `trace` alone keeps what earlier audits found (recorded in the profile's comments).
        from_audit = set(previous.get("x-derivation", {}).get("container_audit", []))
    names |= from_audit
    rare = set(RARE) - names
    names |= rare
    refused = sorted(names & NEVER)
    if refused:
        raise SystemExit(f"derive: the workload used calls this profile refuses on purpose: {refused}; decide explicitly")
    unknown = sorted(n for n in names if n not in x86)
    if unknown:
        raise SystemExit(f"derive: not x86_64 system call names: {unknown}")
    special = {"clone", "clone3", "socket"}
    plain = names - special
    aarch64 = set()
    for name in sorted(plain):
        if name not in generic:
            if name not in AARCH64_EQUIVALENTS:
                raise SystemExit(f"derive: {name} has no aarch64 equivalent in AARCH64_EQUIVALENTS; add one")
            for equivalent in AARCH64_EQUIVALENTS[name]:
                if equivalent not in generic:
                    raise SystemExit(f"derive: {equivalent} (for {name}) is not an aarch64 system call")
                aarch64.add(equivalent)
    aarch64 -= names | special
    domains = sorted({ADDRESS_FAMILIES[d] if d in ADDRESS_FAMILIES else int(d) for d in traced["socket_domains"]})
    rules = [
        {"names": sorted(plain), "action": "SCMP_ACT_ALLOW",
         "comment": f"the calls of the end-to-end workload: {len(set(traced['syscalls']) - {'clone3'})} from host traces "
                    f"(clone and socket with argument rules below), "
                    f"{len(from_audit - set(traced['syscalls']))} more from the container audit "
                    f"({', '.join(sorted(from_audit - set(traced['syscalls']))) or 'none'}), {len(rare)} rare ones "
                    f"({', '.join(sorted(rare)) or 'none'}); x86_64 names"},
    ]
    if aarch64:
        rules.append({"names": sorted(aarch64), "action": "SCMP_ACT_ALLOW",
                      "comment": "aarch64 spellings of traced x86_64 calls that the generic table lacks (open -> openat, ...)"})
    rules.append({"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                  "comment": "threads and the crash handler's spawn of the backtracer; never with a namespace flag"})
    rules.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS,
                  "comment": "flags live in a struct seccomp cannot read: ENOSYS makes glibc fall back to clone"})
    for domain in domains:
        rules.append({"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": domain, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
                      "comment": f"socket domain {domain} ({', '.join(k for k, v in ADDRESS_FAMILIES.items() if v == domain and k != 'AF_LOCAL')})"})
    allowed = plain | aarch64 | {"clone", "socket"}
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "archMap": [
            {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
            {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
        ],
        "syscalls": rules,
        "x-derivation": {
            "script": "scripts/seccomp/derive.sh",
            "allowed_x86_64": len(plain | {"clone", "socket"}),
            "allowed_names_total": len(allowed),
            "host_traces": len(set(traced["syscalls"]) - {"clone3"}),
            "container_audit": sorted(from_audit - set(traced["syscalls"])),
            "rare": sorted(rare),
        },
    }
    return profile


def docker_default_count() -> dict:
    """Docker's default profile as this engine applies it: read from the OCI config.json that dockerd
    hands to containerd for a throwaway container (default capabilities, and with --cap-drop ALL)."""
    counts = {}
    for label, extra in (("default capabilities", []), ("cap_drop ALL", ["--cap-drop", "ALL"])):
        container = subprocess.run(["docker", "create", *extra, "--entrypoint", "/app/service", "-e", "DATABASE_URL=sqlite:///tmp/x.db", "-e", "HOST=127.0.0.1",
                                    "code-api:" + os.environ.get("CODE_IMAGE_TAG", "dev")], check=True, capture_output=True, text=True).stdout.strip()
        try:
            subprocess.run(["docker", "start", container], check=True, capture_output=True)
            config = None
            for _ in range(50):
                found = list(Path("/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby").glob(f"{container}*/config.json"))
                if found:
                    config = json.loads(found[0].read_text())
                    break
                time.sleep(0.1)
            if config is None:
                raise SystemExit("derive: could not find the container's OCI config.json")
            seccomp = config["linux"]["seccomp"]
            allowed = set()
            for rule in seccomp["syscalls"]:
                if rule["action"] == "SCMP_ACT_ALLOW":
                    allowed.update(rule["names"])
            x86 = set(syscall_table(UNISTD_X86_64).values())
            counts[label] = {"allowed": len(allowed), "allowed_x86_64": len(allowed & x86), "architectures": seccomp.get("architectures")}
        finally:
            subprocess.run(["docker", "rm", "-f", container], check=False, capture_output=True)
    version = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], check=False, capture_output=True, text=True).stdout.strip()
    return {"engine": version, **counts}


def write_profile(profile: dict, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(profile, indent=2) + "\n"
    path.write_text(text)


def print_counts(profile: dict, docker: dict | None):
    x = profile["x-derivation"]
    domains = [r["args"][0]["value"] for r in profile["syscalls"] if r["names"] == ["socket"]]
    print(f"profile: {PROFILE.relative_to(ROOT)}")
    print(f"  names allowed: {x['allowed_names_total']} ({x['allowed_x86_64']} x86_64 system calls, the rest aarch64 spellings)")
    print(f"    from host traces: {x['host_traces']}; from the container audit only: {x['container_audit'] or 'none'}; "
          f"rare, allowed by rule: {x['rare'] or 'none'}")
    print(f"    clone only without namespace flags; socket only for domains {domains}; clone3 answers ENOSYS; everything else EPERM")
    if docker:
        for label in ("default capabilities", "cap_drop ALL"):
            print(f"  Docker {docker['engine']} default profile as this engine applies it ({label}): {docker[label]['allowed']} names "
                  f"allowed, {docker[label]['allowed_x86_64']} of them x86_64 system calls")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["all", "trace", "audit", "count"])
    parser.add_argument("--tag", default=os.environ.get("CODE_IMAGE_TAG", "dev"), help="image tag of code-api/worker/mcp (default dev)")
    parser.add_argument("--work", default=str(ROOT / "out" / "seccomp"), help="work folder for binaries and traces (git-ignored out/)")
    parser.add_argument("--profile", default=str(PROFILE))
    parser.add_argument("--runs", type=int, default=2, help="host trace runs, united (timing-dependent calls)")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments for the audit")
    args = parser.parse_args()
    path = Path(args.profile)
    previous = json.loads(path.read_text()) if path.exists() else None
    if args.command == "count":
        print_counts(previous, docker_default_count())
        return
    if args.command in ("all", "trace"):
        traced = trace(args)
    else:
        traced = json.loads((Path(args.work) / "traced.json").read_text())
    # `all` starts from the host traces alone; `trace` and `audit` keep earlier audit findings.
    profile = build_profile(traced, {"logged": []} if args.command == "all" else None, previous)
    if args.command in ("all", "audit"):
        # The candidate (host traces + earlier audit findings) is audited in containers; what the
        # kernel logs joins the list, and the audit repeats until it logs nothing new (at most 3 runs).
        # The candidate is the profile file meanwhile (the suite reads it for the probe tests).
        write_profile(profile, path)
        for round_ in range(1, 4):
            result = audit(args, profile)
            new = set(result["logged"]) - {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}
            profile = build_profile(traced, {"logged": sorted(set(profile["x-derivation"]["container_audit"]) | set(result["logged"]))}, None)
            write_profile(profile, path)
            if result["pytest_status"] != 0:
                raise SystemExit(f"derive: the container suite failed under the audit profile (exit {result['pytest_status']})")
            if not new:
                break
            log(f"audit round {round_}: added {sorted(new)}; auditing again")
    write_profile(profile, path)
    print_counts(profile, docker_default_count())


if __name__ == "__main__":
    main()
