"""Helpers shared by the benchmark scripts: ports, processes, waiting for a server, wrk, databases,
code-api with seeded data. Python 3.11 standard library only. Everything talks to 127.0.0.1, and every
wait is bounded in time."""
import glob
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_api_key():
    """A secret of code-api's shape: `code_` and 43 characters of URL-safe base64."""
    return "code_" + secrets.token_urlsafe(32)


def peak_rss_kib(pid):
    return _status_kib(pid, "VmHWM:")


def rss_kib(pid):
    return _status_kib(pid, "VmRSS:")


def anon_kib(pid):
    return _status_kib(pid, "RssAnon:")


def _status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    """`pid` and every process below it (a uvicorn master and its workers, say)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def tree_rss_kib(pid):
    """Resident memory of a process and all its descendants."""
    return sum(rss_kib(each) for each in descendants(pid))


def cpu_seconds(pid):
    """CPU time (user + system) a running process has used so far: a cost per unit of work that a busy,
    noisy machine changes far less than it changes throughput."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime and stime, fields 14 and 15


def call(url, key, body=None, method=None, headers=None, timeout=10):
    """JSON in, JSON out, with `Authorization: Bearer key`."""
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                     method=method or ("POST" if body is not None else "GET"))
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)


def wait_http(url, timeout=30.0, process=None, status=200):
    """Polls `url` until it answers `status`; raises when `timeout` passes or `process` exits."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == status:
                    return
        except urllib.error.HTTPError as error:
            last = error.code
        except OSError as error:
            last = error
        time.sleep(0.02)
    raise RuntimeError(f"{url} did not answer {status} within {timeout}s (last: {last})")


class Server:
    """A process started by a benchmark; stopped (SIGTERM, then SIGKILL) on `stop` or leaving `with`.
    Its output goes to a log file so that a failure can be shown."""

    def __init__(self, name, command, env, cwd=None, log_dir=None, new_session=True):
        self.name = name
        self.log_path = os.path.join(log_dir or tempfile.gettempdir(), f"{name}-{secrets.token_hex(3)}.log")
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=new_session)
        self.pid = self.process.pid

    def tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as handle:
                return "".join(handle.readlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout=15):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait(timeout=5)
        self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def without_debug_sections(binary, directory):
    """A copy of `binary` in `directory` without its debug sections, under the name it was given (code-services
    takes its service from the name it is started by; a link to it keeps that name). valgrind 3.19 (Debian 12)
    cannot read the DWARF 5 of Swift 6 binaries; the symbol table stays, and with it the functions' names."""
    real = os.path.realpath(binary)
    copy = os.path.join(directory, os.path.basename(real))
    subprocess.run(["objcopy", "--strip-debug", real, copy], check=True, timeout=300)
    if os.path.basename(binary) != os.path.basename(real):
        os.symlink(os.path.basename(real), os.path.join(directory, os.path.basename(binary)))
    return os.path.join(directory, os.path.basename(binary))


class CallgrindServer(Server):
    """A service under valgrind's callgrind (from a `without_debug_sections` copy), which writes its profile
    when the service exits: `stop` it with a timeout long enough for a process under valgrind."""

    def __init__(self, name, command, env, directory, demangle=True):
        self.profile = os.path.join(directory, f"{name}.callgrind")
        # By its path: Popen looks a bare name up in the child's PATH, which service_env narrows to /usr/bin:/bin.
        tool = [shutil.which("valgrind") or "valgrind", "--tool=callgrind", f"--callgrind-out-file={self.profile}"]
        super().__init__(name, tool + ([] if demangle else ["--demangle=no"]) + command, env, log_dir=directory)

    def profiles(self):
        """The profile files the run wrote (one per process); an error with the log's end when there are none."""
        written = sorted(glob.glob(glob.escape(self.profile) + "*"))
        if not written:
            raise RuntimeError(f"{self.name}: callgrind wrote no profile:\n{self.tail(40)}")
        return written


def ms(value, unit):
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(url, duration, connections, threads=2, script=None, headers=(), timeout_s=None):
    """Runs wrk; returns a dict: rps, p50/p90/p99 in ms, non2xx (wrk's count), socket errors, the Lua
    script's `BENCH key=value` lines (if it prints any) and the raw output."""
    threads = max(1, min(threads, connections))
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
               "--timeout", "10s"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    completed = subprocess.run(command + [url], capture_output=True, text=True,
                               timeout=timeout_s or duration + 60)
    output = completed.stdout + completed.stderr
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match:
        raise RuntimeError(f"wrk printed no figures for {url}:\n{output}")

    def percentile(name):
        found = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)\b", output)
        return ms(float(found.group(1)), found.group(2)) if found else None

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    lua = dict(re.findall(r"^BENCH (\w+)=(\S+)$", output, re.M))
    requests = re.search(r"(\d+) requests in", output)
    return {
        "rps": float(match.group(1)),
        "p50_ms": percentile("50"), "p90_ms": percentile("90"), "p99_ms": percentile("99"),
        "requests": int(requests.group(1)) if requests else None,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in socket_errors.groups()) if socket_errors else 0,
        "lua": lua,
        "output": output,
    }


def fresh_database(directory, admin_url=None):
    """A database of its own: a SQLite file in `directory`, or, given a PostgreSQL admin URL (by default
    BENCH_POSTGRES_URL), a new database on that server. Returns its URL and a function that drops it."""
    admin = admin_url or os.environ.get("BENCH_POSTGRES_URL")
    if not admin:
        return f"sqlite://{directory}/code.db", lambda: None
    name = "bench_" + secrets.token_hex(6)
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True, timeout=60,
                   capture_output=True)
    url = urllib.parse.urlsplit(admin)._replace(path=f"/{name}").geturl()
    return url, lambda: subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                                       check=False, timeout=60, capture_output=True)


def service_env(port, **extra):
    """The environment every service gets here: loopback, a port, no metrics listener, quiet logs."""
    env = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": "0", "LOG_LEVEL": "error"}
    env.update({name: str(value) for name, value in extra.items()})
    return env


def start_code_api(binary, database_url, admin_key, log_dir=None, extra_env=None, timeout=60):
    """code-api on a free port; returns the Server with `.url` once /health/ready answers."""
    port = free_port()
    env = service_env(port, DATABASE_URL=database_url, CODE_ADMIN_KEY=admin_key, **(extra_env or {}))
    server = Server("code-api", [binary], env, log_dir=log_dir)
    server.url = f"http://127.0.0.1:{port}"
    try:
        wait_http(server.url + "/health/ready", timeout=timeout, process=server.process)
    except Exception:
        print(server.tail(), flush=True)
        server.stop()
        raise
    return server


def seed_deployments(base_url, key, count, prefix="seed", parallel=1):
    """Creates `count` deployments through POST /v1/deployments; returns their ids in creation order."""
    def create(index):
        return call(base_url + "/v1/deployments", key, {
            "service": f"{prefix}{index}", "image": f"ghcr.io/acme/web:1.0.{index}", "environment": "staging",
            "replicas": 1 + index % 3})["id"]
    if parallel <= 1:
        return [create(index) for index in range(count)]
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(create, range(count)))


def create_key(base_url, admin_key, name, role):
    """A new key through POST /v1/keys; returns its secret."""
    return call(base_url + "/v1/keys", admin_key, {"name": name, "role": role})["secret"]
