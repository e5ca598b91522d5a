"""Helpers of the container suite: commands with deadlines, compose projects of their own (Stack),
ports, secrets, `docker run` options equal to the base file's hardening. The fixtures that use them are
in conftest.py.

The suite is a package (integration/containers/__init__.py) so that its modules never shadow
integration/conftest.py's `conftest` when every suite runs at once.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets as random_secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from conftest import free_port, free_port_pair  # the suite's modules import them from here

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COMPOSE_DIR = ROOT / "compose"
PROFILE = COMPOSE_DIR / "seccomp" / "code-services.json"


def load_services(root: Path = ROOT) -> list[dict]:
    """services.json: the one list of the services (name, compose service, port, needs)."""
    return json.loads((root / "services.json").read_text())["services"]


SERVICE_LIST = load_services()
# compose service name -> executable and image name, e.g. "api" -> "code-api"
SERVICES = {service["compose"]: service["name"] for service in SERVICE_LIST}
PROBE_IMAGE = "code-seccomp-probe:local"
RUNTIME_ROOTFS_IMAGE = "code-runtime-rootfs:local"
# compose.yaml: stop_grace_period of each service (SHUTDOWN_TIMEOUT is 10 s inside).
STOP_GRACE_SECONDS = 15


def port_variable(service: dict) -> str:
    """The variable that moves a service's published port, e.g. API_PORT (compose/compose.yaml)."""
    return service["compose"].upper().replace("-", "_") + "_PORT"


def writable_paths(service: dict) -> tuple[str, ...]:
    """Where a service may write: /tmp, and the database volume /data when it needs the database."""
    return ("/tmp", "/data") if "database" in service["needs"] else ("/tmp",)


# Variables a developer's shell may hold that would change what compose runs.
SCRUBBED = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "SECCOMP_PROFILE", "SECRETS_DIR", "REGISTRY",
            "WORKER_PORT_LAST", "BIND_ADDRESS", "CODE_ROLLOUT_DRIVER", "DEBIAN_IMAGE",
            "CODE_WEBHOOK_URL", "CODE_HEALTH_URL_ALLOW", "CODE_SIMULATED_STEP_MS", "WORKER_CONCURRENCY", "CODE_LEASE_SECONDS", "CODE_MAX_ATTEMPTS",
            "CODE_ALLOWED_REGISTRIES", "CODE_KEY_CACHE_SECONDS", "MCP_ALLOWED_HOSTS", "MCP_ALLOWED_ORIGINS", "LOG_LEVEL", "WORKER_REPLICAS", "POSTGRES_IMAGE",
            *(port_variable(service) for service in SERVICE_LIST))


def image_tag() -> str:
    return os.environ.get("VERSION") or "dev"


def seccomp_profile() -> Path:
    """The profile the stacks run with: ours, unless the audit derivation substitutes its variant."""
    return Path(os.environ.get("CODE_E2E_SECCOMP_PROFILE") or PROFILE)


# What the suite creates on the engine (compose projects, the swarm stack) is named after the pytest process that
# owns it, so that a later run can tell the leftovers of a run that was killed or timed out from the stacks of a run
# still going (a developer's and CI's at once). A leftover keeps its CPU reservations and ports: the swarm stack of a
# killed run left the next run's api task "Pending: insufficient resources" on a 2-core machine.
# The name also carries where that pid means something (boot and pid namespace): a run in a container that shares
# the engine cannot read this machine's processes, and judges only names of its own place.
# CODE_E2E_KEEP=1 (stacks kept for debugging) names them "kept": never removed by a later run.
def _process_place() -> str:
    """A short id of this boot and pid namespace."""
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    namespace = os.readlink("/proc/self/ns/pid")
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:6]


PLACE = _process_place()
OWNER_SUFFIX = "kept" if os.environ.get("CODE_E2E_KEEP") == "1" else f"p{os.getpid()}-{PLACE}"
OWNED_NAME = re.compile(r"^code-(e2e|swarm)-.*-p(\d+)-([0-9a-f]{6})$")


def owned_name(prefix: str) -> str:
    """`prefix`-<random>-<owner>: a name no other stack has, which says which run owns it."""
    return f"{prefix}-{random_secrets.token_hex(3)}-{OWNER_SUFFIX}"


def left_by_an_interrupted_run(name: str) -> bool:
    """A name from owned_name, given here, whose pytest process is gone (a pid taken since by another program
    counts as gone)."""
    match = OWNED_NAME.match(name)
    if match is None or match[3] != PLACE:
        return False
    try:
        command = Path(f"/proc/{match[2]}/cmdline").read_bytes()
    except OSError:  # no such process
        return True
    return b"pytest" not in command


def remove_interrupted_projects() -> list[str]:
    """`down -v` of every compose project an interrupted run of the suite left; returns their names. Run from an
    empty folder with the compose variables removed, so that compose finds the project by its labels alone (every
    overlay's volumes included), not through the repository's .env (COMPOSE_FILE)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    with tempfile.TemporaryDirectory(prefix="code-e2e-reap-") as empty:
        listed = run(["docker", "compose", "ls", "--all", "--format", "json"], timeout=60, check=False, env=env, cwd=empty).stdout
        names = [project["Name"] for project in json.loads(listed or "[]")]
        removed = [name for name in names if left_by_an_interrupted_run(name)]
        for name in removed:
            run(["docker", "compose", "-p", name, "down", "--remove-orphans", "-v", "--timeout", "5"], timeout=180, check=False,
                env=env, cwd=empty)
    return removed


def run(args, timeout=120, check=True, env=None, input=None, cwd=None):
    """A command with a deadline; its output is returned as text."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, input=input, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def docker(*args, timeout=120, check=True):
    return run(["docker", *args], timeout=timeout, check=check)


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container).stdout)[0]


class Stack:
    """One compose project: its files, environment and containers.

    `secrets_dir`: the folder of file secrets that compose.prod.yaml mounts (SECRETS_DIR); None for
    stacks whose secrets `secrets-init` creates in the `secrets` volume (the base file)."""

    def __init__(self, name: str, overlays: list[str], env: dict, secrets_dir: Path | None, compose_dir: Path = COMPOSE_DIR):
        self.project = name
        self.files = ["-f", str(compose_dir / "compose.yaml")]
        for overlay in overlays:
            path = Path(overlay) if "/" in overlay else compose_dir / f"compose.{overlay}.yaml"
            self.files += ["-f", str(path)]
        self.env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
        self.env.update({"BIND_ADDRESS": "127.0.0.1", "COMPOSE_BAKE": "false"})
        if secrets_dir is not None:
            self.env["SECRETS_DIR"] = str(secrets_dir)
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
        """A secret as the services read it: the operator's file, or the one secrets-init created."""
        if self.secrets_dir is not None:
            return (self.secrets_dir / name).read_text()
        # `docker compose cp` works on the exited one-shot container and writes a tar archive.
        archive = subprocess.run(["docker", "compose", "-p", self.project, *self.files, "cp", f"secrets-init:/secrets/{name}", "-"],
                                 capture_output=True, timeout=60, env=self.env, check=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            return tar.extractfile(name).read().decode()

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
    """A folder of secrets as an operator gives compose.prod.yaml (SECRETS_DIR): readable by the
    services (uid 1001) and PostgreSQL (uid 999) through the bind mount, as its header asks."""
    directory = Path(tempfile.mkdtemp(prefix="code-e2e-secrets-"))
    run([str(ROOT / "scripts" / "dev-secrets.sh"), str(directory / "secrets")])
    for path in (directory, directory / "secrets"):
        path.chmod(0o755)
    return directory / "secrets"


def start_stack(name: str, overlays: list[str], env: dict, file_secrets: bool = False, compose_dir: Path = COMPOSE_DIR) -> Stack:
    """A new project under `name`-<random>; `file_secrets`: the overlays take SECRETS_DIR (prod)."""
    secrets_dir = new_secrets_dir() if file_secrets else None
    stack = Stack(owned_name(name), overlays, env, secrets_dir, compose_dir)
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
    if stack.secrets_dir is not None:
        shutil.rmtree(stack.secrets_dir.parent, ignore_errors=True)


def hardening_args(profile: Path | str | None) -> list[str]:
    """`docker run` options equal to the hardening of compose/compose.yaml plus the image's user."""
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


def copy_repository(destination: Path) -> Path:
    """The repository as a fresh clone would have it, with this working tree's changes: every file git
    tracks or would track (nothing it ignores: no .build, .venv, secrets), committed in a new git
    repository at `destination`, so that `git status` there shows what a command changes."""
    listed = run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"]).stdout
    for relative in filter(None, listed.split("\0")):
        source = ROOT / relative
        if not source.is_file():
            continue  # deleted in the working tree
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    identity = ["-c", "user.name=code-e2e", "-c", "user.email=code-e2e@localhost", "-c", "commit.gpgsign=false"]
    run(["git", "-C", str(destination), "init", "-q"])
    run(["git", "-C", str(destination), "add", "-A"])
    run(["git", "-C", str(destination), *identity, "commit", "-q", "-m", "copy"])
    return destination


def git_status(repository: Path) -> list[tuple[str, str]]:
    """(status, path) of every change in `repository`, untracked files listed one by one."""
    out = run(["git", "-C", str(repository), "status", "--porcelain", "--untracked-files=all"]).stdout
    return [(line[:2].strip(), line[3:]) for line in out.splitlines() if line]
