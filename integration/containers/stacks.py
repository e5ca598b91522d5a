"""Helpers of the container suite: commands with deadlines, compose projects of their own (Stack),
ports, secrets, `docker run` options equal to the security overlay. The fixtures that use them are
in conftest.py.

The suite is a package (integration/containers/__init__.py) so that its modules never shadow
integration/conftest.py's `conftest` when every suite runs at once.
"""
from __future__ import annotations

import json
import os
import secrets as random_secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COMPOSE_DIR = ROOT / "compose"
PROFILE = COMPOSE_DIR / "seccomp" / "code-services.json"
SERVICES = {"api": "code-api", "worker": "code-worker", "mcp": "code-mcp"}
PROBE_IMAGE = "code-seccomp-probe:local"
# compose.yaml: stop_grace_period of each service (SHUTDOWN_TIMEOUT is 10 s inside).
STOP_GRACE_SECONDS = 15
# Variables a developer's shell may hold that would change what compose runs.
SCRUBBED = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "SECCOMP_PROFILE", "SECRETS_DIR", "REGISTRY",
            "API_PORT", "WORKER_PORT", "WORKER_PORT_LAST", "MCP_PORT", "BIND_ADDRESS", "CODE_ROLLOUT_DRIVER",
            "CODE_WEBHOOK_URL", "CODE_SIMULATED_STEP_MS", "WORKER_CONCURRENCY", "CODE_LEASE_SECONDS", "CODE_MAX_ATTEMPTS",
            "CODE_ALLOWED_REGISTRIES", "MCP_ALLOWED_HOSTS", "MCP_ALLOWED_ORIGINS", "LOG_LEVEL", "WORKER_REPLICAS", "POSTGRES_IMAGE")


def image_tag() -> str:
    return os.environ.get("VERSION") or "dev"


def seccomp_profile() -> Path:
    """The profile the stacks run with: ours, unless the audit derivation substitutes its variant."""
    return Path(os.environ.get("CODE_E2E_SECCOMP_PROFILE") or PROFILE)


def run(args, timeout=120, check=True, env=None, input=None):
    """A command with a deadline; its output is returned as text."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, input=input)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def docker(*args, timeout=120, check=True):
    return run(["docker", *args], timeout=timeout, check=check)


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container).stdout)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair() -> int:
    """A port p with p+1 free as well (the prod overlay publishes a range for two workers)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


class Stack:
    """One compose project: its files, environment and containers."""

    def __init__(self, name: str, overlays: list[str], env: dict, secrets_dir: Path):
        self.project = name
        self.files = ["-f", str(COMPOSE_DIR / "compose.yaml")]
        for overlay in overlays:
            path = Path(overlay) if "/" in overlay else COMPOSE_DIR / f"compose.{overlay}.yaml"
            self.files += ["-f", str(path)]
        self.env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        self.env.update({"SECRETS_DIR": str(secrets_dir), "BIND_ADDRESS": "127.0.0.1", "COMPOSE_BAKE": "false"})
        if os.environ.get("CODE_E2E_SECCOMP_PROFILE"):
            self.env["SECCOMP_PROFILE"] = os.environ["CODE_E2E_SECCOMP_PROFILE"]
        self.env.update(env)
        self.secrets_dir = secrets_dir

    def compose(self, *args, timeout=300, check=True):
        return run(["docker", "compose", "-p", self.project, *self.files, *args], timeout=timeout, check=check, env=self.env)

    def up(self, timeout=300):
        started = time.monotonic()
        result = self.compose("up", "-d", "--no-build", "--wait", "--wait-timeout", str(timeout - 30), timeout=timeout, check=False)
        if result.returncode != 0:
            logs = self.compose("logs", "--no-color", "--tail", "60", timeout=60, check=False).stdout
            raise AssertionError(f"up failed ({result.returncode}): {result.stderr[-3000:]}\n{logs[-6000:]}")
        return time.monotonic() - started

    def down(self, volumes=False):
        return self.compose("down", "--remove-orphans", *(["-v"] if volumes else []), "--timeout", str(STOP_GRACE_SECONDS), timeout=180, check=False)

    def containers(self, service: str | None = None, all_states=False) -> list[str]:
        args = ["ps", "-q", *(["-a"] if all_states else []), *([service] if service else [])]
        return [line for line in self.compose(*args, timeout=60).stdout.split() if line]

    def container(self, service: str) -> str:
        found = self.containers(service)
        assert len(found) == 1, f"expected one {service} container, found {found}"
        return found[0]

    def published(self, service: str, port: int, index: int = 1) -> str:
        out = self.compose("port", "--index", str(index), service, str(port), timeout=30).stdout.strip()
        host, _, published = out.rpartition(":")
        assert host == "127.0.0.1", f"{service}:{port} is published on {out}, not on 127.0.0.1 only"
        return f"http://127.0.0.1:{published}"

    def secret(self, name: str) -> str:
        return (self.secrets_dir / name).read_text()

    def logs(self, tail=80) -> str:
        return self.compose("logs", "--no-color", "--tail", str(tail), timeout=60, check=False).stdout


def network_ip(container: str) -> str:
    networks = inspect(container)["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["IPAddress"]


def require_images():
    missing = [f"{image}:{image_tag()}" for image in SERVICES.values()
               if docker("image", "inspect", f"{image}:{image_tag()}", check=False, timeout=30).returncode != 0]
    if missing:
        pytest.exit(f"images missing: {missing}; build them with scripts/test-containers.sh "
                    f"(or docker compose -f compose/compose.yaml build)", returncode=2)


def new_secrets_dir() -> Path:
    directory = Path(tempfile.mkdtemp(prefix="code-e2e-secrets-"))
    run([str(ROOT / "scripts" / "dev-secrets.sh"), str(directory / "secrets")])
    return directory / "secrets"


def start_stack(name: str, overlays: list[str], env: dict) -> Stack:
    secrets_dir = new_secrets_dir()
    stack = Stack(f"{name}-{random_secrets.token_hex(3)}", overlays, env, secrets_dir)
    stack.up_seconds = None
    try:
        stack.up_seconds = stack.up()
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def stop_stack(stack: Stack):
    if os.environ.get("CODE_E2E_KEEP") == "1":
        print(f"\nCODE_E2E_KEEP=1: project {stack.project} left running (secrets in {stack.secrets_dir})")
        return
    stack.down(volumes=True)
    shutil.rmtree(stack.secrets_dir.parent, ignore_errors=True)


def hardening_args(profile: Path | str | None) -> list[str]:
    """`docker run` options equal to compose.security.yaml plus the image's user."""
    args = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
            "--security-opt", "apparmor=docker-default", "--tmpfs", "/tmp:noexec,nosuid,size=100m", "--user", "1001:1001"]
    if profile is not None:
        args += ["--security-opt", f"seccomp={profile}"]
    return args


def proc_status(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s")
