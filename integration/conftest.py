"""Shared fixtures of the integration suites: the service executables as real processes on loopback.

The executables come from CODE_BIN_DIR, or from `swift build --show-bin-path` (the debug build that
`make test-swift` made). Every process is stopped with SIGTERM at the end of its test, and every wait
is bounded.
"""
import os
import random
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def bin_dir() -> Path:
    configured = os.environ.get("CODE_BIN_DIR")
    if configured:
        return Path(configured)
    path = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    return Path(path)


_HANDED_OUT: set[int] = set()


def _ephemeral_range_start() -> int:
    """The first port of the kernel's ephemeral range (Linux's default 32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _can_bind(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing holds now, never the same twice in this process, chosen below the
    kernel's ephemeral range (as Tests/CodeTestSupport's freePort). The kernel gives ports of that range
    to outgoing connections and to binds of port 0, and Docker to ports published without a host port,
    so one picked there by a bind of port 0 could be handed out again, or taken, before the stack that
    was given it binds it: a container suite's `up` failed with "port is already allocated"."""
    band = range(10_000, max(10_000, min(20_000, _ephemeral_range_start())))
    if len(band) >= 1_000:
        for _ in range(1_000):
            port = random.choice(band)
            if port in _HANDED_OUT:
                continue
            _HANDED_OUT.add(port)
            if _can_bind(port):
                return port
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def free_port_pair() -> int:
    """A port p with p+1 free as well (the prod overlay publishes a range for two workers)."""
    for _ in range(50):
        port = free_port()
        if port + 1 not in _HANDED_OUT and _can_bind(port + 1):
            _HANDED_OUT.add(port + 1)
            return port
    raise RuntimeError("no two consecutive free ports")


def new_key() -> str:
    """An API key secret in the format code-api expects: code_ + 43 URL-safe base64 characters."""
    return "code_" + secrets.token_urlsafe(32)


class Service:
    """One service executable running on 127.0.0.1 with a port of its own."""

    def __init__(self, name: str, env: dict, log_dir: Path):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(self.port), "METRICS_PORT": "0", "LOG_FORMAT": "json"}
        environment.update(env)
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen([str(bin_dir() / name)], env=environment, stdout=self.log, stderr=subprocess.STDOUT)
        self.killed = False

    def wait_ready(self, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health/ready", timeout=1) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready within {timeout}s: {self.log_path.read_text()[-2000:]}")

    def kill(self):
        """SIGKILL, as a crash; the teardown then expects no clean exit."""
        self.killed = True
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then a bounded wait; returns the exit status (None if it had to be killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.log.close()
                return None
        self.log.close()
        return self.process.returncode


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="code-integration-") as directory:
        yield Path(directory)


@pytest.fixture
def services(workdir):
    """Starts services on demand; stops them all at the end of the test."""
    started = []

    def start(name: str, env: dict, ready: bool = True) -> Service:
        service = Service(name, env, workdir)
        started.append(service)
        return service.wait_ready() if ready else service

    yield start
    # Every service must drain and exit 0 on SIGTERM (the orchestrator's contract), whatever the test did.
    unclean = []
    for service in reversed(started):
        status = service.stop()
        if not service.killed and status != 0:
            unclean.append(f"{service.name} exited {status} on SIGTERM: {service.log_path.read_text()[-1500:]}")
    assert not unclean, unclean


@pytest.fixture
def api(services, workdir):
    """code-api on a SQLite file of its own, with an admin key."""
    admin = new_key()
    service = services("code-api", {"DATABASE_URL": f"sqlite://{workdir}/code.db", "CODE_ADMIN_KEY": admin, "LOG_LEVEL": "warning"})
    service.admin_key = admin
    return service


@pytest.fixture(scope="session")
def postgres_server():
    """Admin URL of a PostgreSQL server: CODE_TEST_POSTGRES_URL, or a throwaway one for the session."""
    configured = os.environ.get("CODE_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    url = subprocess.run([str(ROOT / "scripts/test-postgres.sh"), "start"], check=True, capture_output=True, text=True).stdout.strip()
    yield url
    subprocess.run([str(ROOT / "scripts/test-postgres.sh"), "stop"], check=False)


def _psql(admin_url: str, sql: str):
    subprocess.run(["psql", admin_url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], check=True, capture_output=True, text=True, timeout=60)


@pytest.fixture
def postgres_database(postgres_server):
    """A database of its own on the test server; dropped afterwards. Yields its URL."""
    name = "code_it_" + secrets.token_hex(8)
    _psql(postgres_server, f"CREATE DATABASE {name}")
    base, _, query = postgres_server.partition("?")
    url = base.rsplit("/", 1)[0] + "/" + name + (("?" + query) if query else "")
    yield url
    _psql(postgres_server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, workdir):
    """Each test using this runs once on a SQLite file and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite://{workdir}/code.db"
    return request.getfixturevalue("postgres_database")


REPORTED: dict[str, list[str]] = {}


def reported(section: str) -> list[str]:
    """The lines of figures a suite measured under `section`: printed in a section of their own at the end of
    the run, so that CI logs carry them without -s."""
    return REPORTED.setdefault(section, [])


@pytest.fixture
def drill_figures():
    return reported("drill figures")


def pytest_terminal_summary(terminalreporter):
    for section, lines in REPORTED.items():
        if lines:
            terminalreporter.section(section)
            for line in lines:
                terminalreporter.write_line(line)
