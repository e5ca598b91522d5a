"""Docker Swarm: deploy/swarm/stack.yaml on a single-node swarm.

- test_swarm_stack_file_*: the stack file as `docker compose config` renders it (no engine needed):
  every service hardened as far as Swarm allows, health-checked, limited, updated with automatic
  rollback, and free of keys `docker stack deploy` ignores;
- then, on a swarm (`docker swarm init --advertise-addr 127.0.0.1` unless the engine is in one
  already): the stack on the images scripts/test-containers.sh built, with the simulated rollout
  driver slowed down so that pipelines are always in flight; a stream of deployments through the api
  while the worker service is force-updated (a rolling update) and one worker task's container is
  killed mid-pipeline: every deployment ends in exactly one terminal state, none lost, none finished
  twice; then a new api image: the service converges and serves again; then an update whose task
  fails: Swarm rolls it back by itself; `docker stack rm` leaves no task behind.

Everything the module creates (stack, secrets, volume, image tags, the swarm itself when it created
it) is removed by the `swarm_stack` and `swarm` finalizers, also when a test fails. Every wait has a
deadline; the module takes about 70 s.
"""
from __future__ import annotations

import json
import os
import secrets as random_secrets
import shutil
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import reported

from . import checks, workload
from .stacks import (PLACE, ROOT, SERVICES, docker, free_port, image_tag, inspect, left_by_an_interrupted_run, new_secrets_dir, owned_name,
                     proc_status, run, wait_for)

STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yaml"
REGISTRY = "code-swarm.local"
SECRET_NAMES = ("admin_key", "mcp_api_key", "mcp_auth_token", "webhook_secret", "postgres_password")
# Keys `docker stack deploy` ignores (it lists them as "Ignoring unsupported options", or drops them
# without a word: tmpfs, depends_on); checked on Docker 20.10.24 (deploy/swarm/README.md).
IGNORED_BY_SWARM = ("security_opt", "tmpfs", "shm_size", "restart", "privileged", "build", "devices", "cgroup_parent", "ipc",
                    "links", "network_mode", "userns_mode", "depends_on", "container_name")
# The stack file's variables: a developer's shell must not change what the tests deploy or render.
STACK_VARIABLES = ("REGISTRY", "VERSION", "POSTGRES_IMAGE", "SECRET_PREFIX", "API_PORT", "MCP_PORT", "WORKER_REPLICAS", "POSTGRES_CONSTRAINT",
                   "HEALTHCHECK_INTERVAL", "POSTGRES_HEALTHCHECK_INTERVAL", "UPDATE_DELAY", "UPDATE_MONITOR", "CODE_ROLLOUT_DRIVER",
                   "CODE_SIMULATED_STEP_MS", "CODE_WEBHOOK_URL", "CODE_HEALTH_URL_ALLOW", "WORKER_CONCURRENCY", "CODE_LEASE_SECONDS",
                   "CODE_MAX_ATTEMPTS", "CODE_ALLOWED_REGISTRIES", "CODE_KEY_CACHE_SECONDS", "MCP_ALLOWED_HOSTS", "MCP_ALLOWED_ORIGINS",
                   "LOG_LEVEL", "ENDPOINT_MODE")
TERMINAL_STEPS = ("finish", "lease", "cancel")
# The simulated driver takes STEP_MS per replica: a deployment of REPLICAS replicas rolls out for 1.6 s.
STEP_MS, REPLICAS = 400, 4
LEASE_SECONDS = 6
STREAM_INTERVAL = 0.15
DEADLINE = 90  # seconds, for any one convergence


def swarm_figures():
    return reported("swarm stack (deploy/swarm/stack.yaml)")


def stack_env(**variables) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES and not k.startswith("COMPOSE_")}
    env.update(variables)
    return env


# --- the stack file, rendered (no engine) --------------------------------------------------------------------------


def rendered_stack(**variables) -> dict:
    result = run(["docker", "compose", "-f", str(STACK_FILE), "config", "--format", "json"], timeout=60,
                 env=stack_env(REGISTRY="registry.example", VERSION="1.2.3", **variables))
    return json.loads(result.stdout)


def stack_file_problems(config: dict) -> list[str]:
    """What deploy/swarm/stack.yaml promises for every service (header comment and README)."""
    problems = []
    services = config["services"]
    for name in SERVICES:
        if name not in services:
            problems.append(f"{name}: missing (services.json lists it)")
    declared_secrets = config.get("secrets") or {}
    for name, secret in declared_secrets.items():
        if not secret.get("external") or secret.get("file"):
            problems.append(f"secret {name}: not external (the operator creates it with docker secret create)")
    for name, service in services.items():
        def problem(text):
            problems.append(f"{name}: {text}")
        for key in IGNORED_BY_SWARM:
            if service.get(key):
                problem(f"uses `{key}`, which docker stack deploy ignores")
        if service.get("read_only") is not True:
            problem("root file system is not read-only")
        if service.get("cap_drop") != ["ALL"] or service.get("cap_add"):
            problem(f"capabilities: cap_drop {service.get('cap_drop')}, cap_add {service.get('cap_add')}")
        uid = "999" if name == "postgres" else "1001"
        if service.get("user") != f"{uid}:{uid}":
            problem(f"user {service.get('user')!r}, expected {uid}:{uid}")
        if not any(v.get("type") == "tmpfs" and v.get("target") == "/tmp" for v in service.get("volumes") or []):
            problem("no tmpfs mount on /tmp")
        healthcheck = service.get("healthcheck") or {}
        if not healthcheck.get("test") or healthcheck.get("disable") or healthcheck["test"][0] not in ("CMD", "CMD-SHELL"):
            problem(f"no healthcheck: {healthcheck}")
        deploy = service.get("deploy") or {}
        resources = deploy.get("resources") or {}
        for kind, wanted in (("limits", ("memory", "cpus", "pids")), ("reservations", ("memory", "cpus"))):
            missing = [key for key in wanted if not (resources.get(kind) or {}).get(key)]
            if missing:
                problem(f"no {kind} for {missing}")
        if (deploy.get("restart_policy") or {}).get("condition") != "any":
            problem(f"restart_policy {deploy.get('restart_policy')}")
        update = deploy.get("update_config") or {}
        if update.get("failure_action") != "rollback":
            problem(f"update_config failure_action {update.get('failure_action')!r}, expected rollback")
        ports = service.get("ports") or []
        if any(port.get("mode") != "host" for port in ports):
            problem(f"ports not published in host mode (the routing mesh does not answer here): {ports}")
        order = "stop-first" if ports or name == "postgres" else "start-first"
        if update.get("order") != order:
            problem(f"update_config order {update.get('order')!r}, expected {order}")
        if not deploy.get("rollback_config") or (deploy["rollback_config"].get("order") != order):
            problem(f"rollback_config {deploy.get('rollback_config')}")
        # Every *_FILE variable names a secret the service mounts, owned by its uid, mode 0400.
        mounted = {s.get("target") or s["source"]: s for s in service.get("secrets") or []}
        for variable, value in (service.get("environment") or {}).items():
            if variable.endswith("_FILE"):
                target = str(value).removeprefix("/run/secrets/")
                if target not in mounted:
                    problem(f"{variable}={value} is not a mounted secret")
        for target, reference in mounted.items():
            if reference["source"] not in declared_secrets:
                problem(f"secret {reference['source']} is not declared")
            mode = reference.get("mode")
            mode = int(mode, 8) if isinstance(mode, str) else mode  # compose renders 0400 as the string "0400"
            if (reference.get("uid"), reference.get("gid"), mode) != (uid, uid, 0o400):
                problem(f"secret {target}: uid {reference.get('uid')} gid {reference.get('gid')} mode {reference.get('mode')}, expected {uid}/0400")
    return problems


def test_swarm_stack_file_is_hardened_as_swarm_allows():
    config = rendered_stack()
    assert not stack_file_problems(config), stack_file_problems(config)
    assert config["services"]["worker"]["deploy"]["replicas"] == 2
    images = {name: config["services"][name]["image"] for name in SERVICES}
    assert images == {name: f"registry.example/{image}:1.2.3" for name, image in SERVICES.items()}, images


def test_swarm_stack_passes_the_services_settings_through():
    """A setting the header lists reaches the service that reads it; unset, it is empty, which the
    services read as unset (their default)."""
    settings = {"CODE_KEY_CACHE_SECONDS": ("api", "0"), "CODE_ALLOWED_REGISTRIES": ("api", "ghcr.io"),
                "CODE_LEASE_SECONDS": ("worker", "12"), "MCP_ALLOWED_HOSTS": ("mcp", "mcp.example")}
    config = rendered_stack(**{variable: value for variable, (_, value) in settings.items()})
    for variable, (service, value) in settings.items():
        assert config["services"][service]["environment"].get(variable) == value, (variable, service)
    assert rendered_stack()["services"]["api"]["environment"].get("CODE_KEY_CACHE_SECONDS") == ""


def test_swarm_stack_file_check_can_fail():
    """The check above notices a service that loses a promise."""
    config = rendered_stack()
    worker = config["services"]["worker"]
    worker["read_only"] = False
    worker["deploy"]["update_config"]["failure_action"] = "pause"
    worker["security_opt"] = ["no-new-privileges:true"]
    del config["services"]["mcp"]["deploy"]["resources"]["limits"]["pids"]
    found = "\n".join(stack_file_problems(config))
    for expected in ("worker: root file system is not read-only", "worker: update_config failure_action 'pause'",
                     "worker: uses `security_opt`", "mcp: no limits for ['pids']"):
        assert expected in found, found


def test_leftovers_of_interrupted_runs_are_told_from_stacks_in_use():
    """What remove_interrupted_stacks and stacks.remove_interrupted_projects remove, and what they leave."""
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert left_by_an_interrupted_run(f"code-swarm-0a1b2c-p{finished.pid}-{PLACE}")  # its process is gone
    with subprocess.Popen(["sleep", "30"]) as other:  # alive, but not a pytest run: the pid was taken since
        try:
            assert left_by_an_interrupted_run(f"code-e2e-prod-0a1b2c-p{other.pid}-{PLACE}")
        finally:
            other.kill()
    assert not left_by_an_interrupted_run(owned_name("code-swarm"))  # this run's
    assert not left_by_an_interrupted_run(owned_name("code-e2e-prod"))
    elsewhere = "000000" if PLACE != "000000" else "ffffff"  # another boot or pid namespace: its pids mean nothing here
    for name in ("code-services", "code-e2e-0a1b2c-kept", "code-swarm-0a1b2c", "my-stack-0a1b2c-p1-" + PLACE,
                 f"code-swarm-0a1b2c-p{finished.pid}-{elsewhere}"):
        assert not left_by_an_interrupted_run(name), name  # a developer's, kept, not the suite's, or not judged here


# --- a single-node swarm ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swarm(docker_engine):
    """The engine in a swarm, as a manager: joined here (and left at the end) unless it already was."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}", timeout=30).stdout.split()
    created = False
    # `swarm init` also creates the local bridge docker_gwbridge, which outlives the swarm: removed with it.
    had_gwbridge = docker("network", "inspect", "docker_gwbridge", check=False, timeout=30).returncode == 0
    if state[0] != "inactive" and state != ["active", "true"]:
        pytest.skip(f"the engine is in a swarm but not as a manager, or not ready: {state}")
    try:
        if state[0] == "inactive":
            # Set first: an init that fails or times out after it took effect still leaves the swarm ours to leave.
            created = True
            docker("swarm", "init", "--advertise-addr", "127.0.0.1", timeout=60)
        yield {"created": created}
    finally:
        if created:
            docker("swarm", "leave", "--force", timeout=60, check=False)
            if not had_gwbridge:
                docker("network", "rm", "docker_gwbridge", timeout=60, check=False)


class SwarmStack:
    def __init__(self, name: str, env: dict, secrets_dir: Path | None):
        self.name = name
        self.env = env
        self.secrets_dir = secrets_dir
        self.images: list[str] = []  # tags this module created
        self.removed = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.env['API_PORT']}"

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.env['MCP_PORT']}"

    def service(self, short: str) -> str:
        return f"{self.name}_{short}"

    def secret(self, name: str) -> str:
        return (self.secrets_dir / name).read_text()

    def deploy(self):
        return run(["docker", "stack", "deploy", "--resolve-image", "never", "--compose-file", str(STACK_FILE), self.name],
                   timeout=120, env=self.env)

    def containers(self, short: str | None = None, all_states=False) -> list[str]:
        label = f"com.docker.swarm.service.name={self.service(short)}" if short else f"com.docker.stack.namespace={self.name}"
        out = docker("ps", "-q", *(["-a"] if all_states else []), "--filter", f"label={label}", timeout=30).stdout
        return out.split()

    def healthy(self, short: str, replicas: int, image: str | None = None) -> list[dict] | None:
        """The running containers of a service when there are `replicas` of them, all healthy (on `image`)."""
        found = [inspect(c) for c in self.containers(short)]
        if len(found) != replicas:
            return None
        for info in found:
            if (info["State"].get("Health") or {}).get("Status") != "healthy":
                return None
            if image is not None and info["Image"] != image:
                return None
        return found

    def update_status(self, short: str) -> dict:
        out = docker("service", "inspect", "--format", "{{json .UpdateStatus}}", self.service(short), timeout=30).stdout.strip()
        return json.loads(out) if out and out != "null" else {}

    def converged(self, short: str, replicas: int, image: str | None = None, before: dict | None = None):
        """The service's update completed (a rollback or a pause fails at once) and its tasks are healthy.
        `before`: the UpdateStatus read before the update was asked for; until it changes, the status is
        the previous update's (compared as a whole, not by time: the daemon's clock may not be UTC)."""
        status = self.update_status(short)
        if before is not None and status == before:
            return None
        state = status.get("State")
        if state in ("rollback_started", "rollback_completed", "rollback_paused", "paused"):
            raise AssertionError(f"{short}: update ended {state}: {status.get('Message')}\n{self.tasks(short)}")
        if state != "completed":
            return None
        return self.healthy(short, replicas, image)

    def tasks(self, short: str) -> str:
        return docker("service", "ps", "--no-trunc", "--format", "{{.Name}} {{.Image}} {{.DesiredState}} {{.CurrentState}} {{.Error}}",
                      self.service(short), timeout=30, check=False).stdout

    def logs(self, short: str, tail=40) -> str:
        return docker("service", "logs", "--no-task-ids", "--tail", str(tail), self.service(short), timeout=30, check=False).stdout

    def remove(self) -> float:
        """`docker stack rm`, then a bounded wait until no service, task container or network of the stack is left,
        then its volume, secrets and image tags. Returns the seconds until no container was left."""
        started = time.monotonic()
        if not self.removed:
            docker("stack", "rm", self.name, timeout=120, check=False)
            self.removed = True
        leftovers = {}

        def gone():
            leftovers["containers"] = self.containers(all_states=True)
            leftovers["services"] = docker("service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={self.name}",
                                           timeout=30).stdout.split()
            return not leftovers["containers"] and not leftovers["services"]
        try:
            wait_for(gone, timeout=DEADLINE, interval=0.5, what=f"no container of stack {self.name}")
        except TimeoutError:
            pass
        seconds = time.monotonic() - started
        for network in docker("network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={self.name}", timeout=30).stdout.split():
            docker("network", "rm", network, timeout=60, check=False)
        for attempt in range(20):
            volumes = set(docker("volume", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={self.name}", timeout=30).stdout.split()
                          + docker("volume", "ls", "-q", "--filter", f"name={self.name}_", timeout=30).stdout.split())
            if not volumes or docker("volume", "rm", *volumes, timeout=60, check=False).returncode == 0:
                break
            time.sleep(1)
        docker("secret", "rm", *(f"{self.name}_{name}" for name in SECRET_NAMES), timeout=60, check=False)
        if self.images:
            docker("rmi", *self.images, timeout=120, check=False)
            self.images = []
        leftovers["networks"] = docker("network", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={self.name}", timeout=30).stdout.split()
        leftovers["secrets"] = docker("secret", "ls", "-q", "--filter", f"name={self.name}_", timeout=30).stdout.split()
        leftovers["volumes"] = docker("volume", "ls", "-q", "--filter", f"name={self.name}_", timeout=30).stdout.split()
        assert not any(leftovers.values()), f"docker stack rm left {leftovers}"
        return seconds


def remove_interrupted_stacks() -> list[str]:
    """Stacks (with their secrets and volume) a killed or timed-out run of this module left: their CPU and memory
    reservations would leave this run's tasks pending."""
    names = docker("stack", "ls", "--format", "{{.Name}}", timeout=60).stdout.split()
    removed = [name for name in names if left_by_an_interrupted_run(name)]
    for name in removed:
        SwarmStack(name, env={}, secrets_dir=None).remove()
    return removed


@pytest.fixture(scope="module")
def swarm_stack(swarm):
    removed = remove_interrupted_stacks()
    if removed:
        swarm_figures().append(f"stacks left by an interrupted run, removed first: {', '.join(removed)}")
    name = owned_name("code-swarm")
    tag = image_tag()
    secrets_dir = new_secrets_dir()
    env = stack_env(**{
        "REGISTRY": REGISTRY, "VERSION": tag, "SECRET_PREFIX": name,
        "API_PORT": str(free_port()), "MCP_PORT": str(free_port()),
        "HEALTHCHECK_INTERVAL": "1s", "POSTGRES_HEALTHCHECK_INTERVAL": "1s", "UPDATE_DELAY": "1s", "UPDATE_MONITOR": "3s",
        "CODE_ROLLOUT_DRIVER": "simulated", "CODE_SIMULATED_STEP_MS": str(STEP_MS), "WORKER_CONCURRENCY": "8",
        "CODE_LEASE_SECONDS": str(LEASE_SECONDS), "WORKER_REPLICAS": "2", "LOG_LEVEL": "info",
    })
    stack = SwarmStack(name, env, secrets_dir)
    try:
        # The stack names images ${REGISTRY}/code-<service>:${VERSION}, as the release publishes them: give the images
        # scripts/test-containers.sh built those names (same image ids); --resolve-image never uses them as they are.
        for image in SERVICES.values():
            docker("tag", f"{image}:{tag}", f"{REGISTRY}/{image}:{tag}")
            stack.images.append(f"{REGISTRY}/{image}:{tag}")
        for secret in SECRET_NAMES:
            # As an operator would: not labelled as part of the stack, so `docker stack rm` leaves them (removed below).
            docker("secret", "create", "--label", "code.test=swarm", f"{name}_{secret}", str(secrets_dir / secret))
        started = time.monotonic()
        stack.deploy_output = stack.deploy()
        try:
            wait_for(lambda: all(stack.healthy(short, replicas) for short, replicas in
                                 (("postgres", 1), ("api", 1), ("worker", 2), ("mcp", 1))),
                     timeout=150, interval=0.5, what="every task of the stack healthy")
        except TimeoutError:
            pytest.fail("the stack did not turn healthy:\n" + "\n".join(
                stack.tasks(s) + stack.logs(s, 20) for s in ("postgres", "api", "worker", "mcp")))
        stack.deploy_seconds = time.monotonic() - started
        yield stack
    finally:
        try:
            stack.remove()
        finally:
            shutil.rmtree(secrets_dir.parent, ignore_errors=True)


def test_swarm_deploy_is_healthy_and_hardened(swarm_stack, swarm):
    figures = swarm_figures()
    output = swarm_stack.deploy_output.stdout + swarm_stack.deploy_output.stderr
    assert "Ignoring" not in output, f"the stack file uses a key Swarm ignores:\n{output}"
    figures.append(f"swarm: {'created by the test' if swarm['created'] else 'already there'}; stack {swarm_stack.name}; "
                   f"deploy to every task healthy: {swarm_stack.deploy_seconds:.1f} s (engine {docker('version', '--format', '{{.Server.Version}}').stdout.strip()})")
    # Both host-mode ports answer on loopback; the api with the operator's secret.
    workload.wait_ready(swarm_stack.api_url + "/health/ready", timeout=30)
    workload.wait_ready(swarm_stack.mcp_url + "/health/ready", timeout=30)
    api = workload.API(swarm_stack.api_url, swarm_stack.secret("admin_key"))
    api.call("GET", "/v1/deployments?limit=1", wanted=200)
    api.call("GET", "/v1/deployments?limit=1", key="code_" + "x" * 43, wanted=401)
    for short in ("api", "worker", "mcp", "postgres"):
        uid = "999" if short == "postgres" else "1001"
        for container in swarm_stack.containers(short):
            info = inspect(container)
            host = info["HostConfig"]
            assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"] and not host["CapAdd"], (short, host["CapDrop"])
            assert info["Config"]["User"] == f"{uid}:{uid}", info["Config"]["User"]
            assert not host["SecurityOpt"], ("Swarm passed security options after all: update the README", host["SecurityOpt"])
            limits = checks.resource_limits(container)  # memory, CPU and pids, as the cgroup enforces them
            if os.geteuid() == 0:
                table = checks.mounts(container)
                assert "ro" in table["/"]["options"], table["/"]
                assert table["/tmp"]["fstype"] == "tmpfs" and {"rw", "noexec", "nosuid", "nodev"} <= table["/tmp"]["options"], table["/tmp"]
                status = proc_status(checks.pid_of(container))
                assert status["Uid"].split() == [uid] * 4 and status["CapEff"] == status["CapPrm"] == "0" * 16, status
                # Docker's default seccomp profile, not the project's allowlist; no_new_privs is not settable in Swarm 20.10.
                assert status["Seccomp"] == "2", status["Seccomp"]
                secrets_root = Path(f"/proc/{checks.pid_of(container)}/root/run/secrets")
                for secret in secrets_root.iterdir():
                    stat = secret.stat()
                    assert (stat.st_uid, stat.st_mode & 0o777) == (int(uid), 0o400), (short, secret.name, stat.st_uid, oct(stat.st_mode))
        figures.append(f"{short}: {len(swarm_stack.containers(short))} task(s) healthy; limits memory {limits['memory'] // 2**20} MiB, "
                       f"cpus {limits['cpus']}, pids {limits['pids']}" + (f"; NoNewPrivs {status['NoNewPrivs']}, Seccomp {status['Seccomp']}"
                                                                            if os.geteuid() == 0 else ""))


class BackgroundLoop:
    """`run` in a daemon thread for the length of a `with` block; `stop` ends it, the exit waits for it."""
    join_timeout = 10.0

    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=self.join_timeout)


class Stream(BackgroundLoop):
    """Deployments created through the api from a background thread, one every STREAM_INTERVAL seconds. A POST that
    fails is retried with the same Idempotency-Key, so that every deployment the api created is known by its id."""
    join_timeout = 30.0  # a POST may be retrying

    def __init__(self, api: workload.API):
        self.api = api
        self.ids: list[str] = []
        self.errors: list[str] = []  # attempts that failed (then retried)
        self.failed: list[int] = []  # deployments whose every attempt failed
        super().__init__()

    def run(self):
        index = 0
        while not self.stop.is_set() and index < 2000:
            key = f"swarm-{random_secrets.token_hex(8)}"
            body = {"service": "swarm-stream", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging", "replicas": REPLICAS,
                    "labels": {"index": str(index)}}
            for _ in range(5):
                try:
                    status, payload, _ = self.api.call("POST", "/v1/deployments", body, headers={"Idempotency-Key": key})
                    if status in (200, 201):
                        self.ids.append(payload["id"])
                        break
                    self.errors.append(f"POST {index}: HTTP {status}: {str(payload)[:200]}")
                except OSError as error:
                    self.errors.append(f"POST {index}: {error}")
                time.sleep(0.5)
            else:
                self.failed.append(index)
            index += 1
            self.stop.wait(STREAM_INTERVAL)


class Availability(BackgroundLoop):
    """Polls a URL every 50 ms from a background thread: the longest stretch without a 200."""

    def __init__(self, url: str):
        self.url = url
        self.samples: list[tuple[float, bool]] = []
        super().__init__()

    def run(self):
        while not self.stop.is_set() and len(self.samples) < 20000:
            try:
                ok = workload.request("GET", self.url, timeout=1)[0] == 200
            except OSError:
                ok = False
            self.samples.append((time.monotonic(), ok))
            self.stop.wait(0.05)

    def longest_gap(self) -> float:
        longest, down_since = 0.0, None
        for at, ok in self.samples:
            if not ok and down_since is None:
                down_since = at
            elif ok and down_since is not None:
                longest, down_since = max(longest, at - down_since), None
        if down_since is not None:
            longest = max(longest, self.samples[-1][0] - down_since)
        return longest


def running_leases(api: workload.API) -> Counter:
    page = api.call("GET", "/v1/deployments?status=running&limit=100", wanted=200)[1]
    return Counter(d.get("lease_owner") for d in page["items"] if d.get("lease_owner"))


def all_listed(api: workload.API) -> list[str]:
    ids, cursor = [], None
    for _ in range(100):
        page = api.call("GET", "/v1/deployments?service=swarm-stream&limit=100" + (f"&cursor={cursor}" if cursor else ""), wanted=200)[1]
        ids += [d["id"] for d in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return ids
    raise AssertionError("more than 100 pages of deployments")


def test_swarm_rolling_update_and_killed_worker_lose_no_deployment(swarm_stack):
    figures = swarm_figures()
    api = workload.API(swarm_stack.api_url, swarm_stack.secret("admin_key"))
    with Stream(api) as stream:
        # Pipelines in flight on both workers before anything happens.
        wait_for(lambda: len(running_leases(api)) == 2, timeout=30, what="deployments running on both workers")
        # 1. A rolling update of the worker (start-first: each new task turns healthy before the old one drains).
        before = swarm_stack.update_status("worker")
        started = time.monotonic()
        docker("service", "update", "--force", "--detach", swarm_stack.service("worker"), timeout=60)
        wait_for(lambda: swarm_stack.converged("worker", 2, before=before), timeout=DEADLINE, interval=0.5,
                 what="the worker's rolling update completed")
        update_seconds = time.monotonic() - started
        # 2. SIGKILL to the worker task that holds the most running deployments right now (mid-pipeline).
        leases = wait_for(lambda: running_leases(api) or None, timeout=20, what="a running deployment")
        by_task = {inspect(c)["Config"]["Labels"]["com.docker.swarm.task.name"]: c for c in swarm_stack.containers("worker")}
        victim, held = next(((owner, count) for owner, count in leases.most_common() if owner in by_task), (None, 0))
        assert victim, f"running deployments are leased by {dict(leases)}, not by the worker tasks {sorted(by_task)}"
        killed_at = time.monotonic()
        docker("kill", by_task[victim], timeout=30)
        # The lease expires, the other worker takes the deployments over; Swarm restarts the task (restart_policy).
        wait_for(lambda: swarm_stack.healthy("worker", 2) and victim not in
                 {inspect(c)["Config"]["Labels"]["com.docker.swarm.task.name"] for c in swarm_stack.containers("worker")},
                 timeout=DEADLINE, interval=0.5, what="a new worker task healthy after the kill")
        restart_seconds = time.monotonic() - killed_at
        time.sleep(LEASE_SECONDS + 2)  # the takeovers happen within the stream
    assert not stream.thread.is_alive(), "the stream of deployments did not stop"
    created = list(stream.ids)
    assert not stream.failed, f"deployments the api never accepted: {stream.failed[:10]}; errors {stream.errors[:10]}"
    assert len(created) >= 50, f"only {len(created)} deployments created"

    # Every deployment reaches a terminal state (bounded), exactly once.
    deadline = time.monotonic() + DEADLINE
    pending = set(created)
    final = {}
    while pending and time.monotonic() < deadline:
        for deployment_id in sorted(pending):
            deployment = api.get(deployment_id)
            if deployment["status"] in workload.TERMINAL:
                final[deployment_id] = deployment
                pending.discard(deployment_id)
        time.sleep(0.5)
    assert not pending, f"{len(pending)} deployments not terminal within {DEADLINE}s, e.g. {[api.get(i) for i in sorted(pending)[:3]]}"
    listed = all_listed(api)
    assert sorted(listed) == sorted(created), f"listed {len(listed)} vs created {len(created)}: " \
                                              f"lost {set(created) - set(listed)}, unknown {set(listed) - set(created)}"
    statuses = Counter(d["status"] for d in final.values())
    attempts = Counter(d["attempt"] for d in final.values())
    releases = takeovers = from_victim = 0
    twice = []
    for deployment_id in created:
        events = api.events(deployment_id)
        ends = [e for e in events if e["step"] in TERMINAL_STEPS and e.get("outcome") in workload.TERMINAL
                and e["kind"] in ("finished", "info")]
        if len(ends) != 1 or ends[0]["outcome"] != final[deployment_id]["status"]:
            twice.append((deployment_id, final[deployment_id]["status"], [(e["step"], e.get("outcome"), e.get("worker_id")) for e in ends]))
        claims = [e for e in events if e["step"] == "claim"]
        released = [e for e in events if e["step"] == "release"]
        releases += len(released)
        # A lease takeover: a claim after an attempt that neither finished nor released (its worker was killed).
        released_attempts = {e["attempt"] for e in released}
        for before, after in zip(claims, claims[1:]):
            if before["attempt"] not in released_attempts and after.get("worker_id") != before.get("worker_id"):
                takeovers += 1
                from_victim += before.get("worker_id") == victim
        assert claims and claims[-1]["attempt"] == final[deployment_id]["attempt"], (deployment_id, claims, final[deployment_id])
    assert not twice, f"deployments without exactly one terminal event: {twice[:5]}"
    assert statuses == {"succeeded": len(created)}, f"not every deployment succeeded: {dict(statuses)}"
    assert releases >= 1, "the rolling update's SIGTERM released no in-flight deployment: no pipeline was interrupted"
    assert from_victim >= 1, f"no deployment of the killed worker {victim} ({held} running when it was killed) was taken over"
    figures.append(f"deployment stream: {len(created)} created (1 per {STREAM_INTERVAL * 1000:.0f} ms, {REPLICAS} replicas x {STEP_MS} ms "
                   f"simulated steps, lease {LEASE_SECONDS} s); POSTs retried {len(stream.errors)}; terminal: {dict(statuses)}; lost 0, finished twice 0")
    figures.append(f"worker rolling update (--force, start-first, 2 replicas): UpdateStatus completed and tasks healthy after "
                   f"{update_seconds:.1f} s; {releases} release(s) by draining workers")
    figures.append(f"docker kill of {victim} holding {held} running deployment(s): replacement task healthy after {restart_seconds:.1f} s; "
                   f"{takeovers} lease takeover(s) ({from_victim} from the killed task); attempts per deployment {dict(sorted(attempts.items()))}")


def test_swarm_api_image_update_converges_and_serves(swarm_stack):
    figures = swarm_figures()
    new_image = f"{REGISTRY}/{SERVICES['api']}:swarm-update-{random_secrets.token_hex(3)}"
    # A trivially different image: the same one with one more label (the legacy builder: FROM and LABEL only).
    run(["docker", "build", "--quiet", "--tag", new_image, "-"], input=f"FROM {REGISTRY}/{SERVICES['api']}:{image_tag()}\n"
        f"LABEL org.opencontainers.image.description=\"swarm update test\"\n", timeout=120, env={**os.environ, "DOCKER_BUILDKIT": "0"})
    swarm_stack.images.append(new_image)
    image_id = inspect(new_image)["Id"]
    old = swarm_stack.containers("api")
    before = swarm_stack.update_status("api")
    started = time.monotonic()
    with Availability(swarm_stack.api_url + "/health/ready") as availability:
        docker("service", "update", "--image", new_image, "--no-resolve-image", "--detach", swarm_stack.service("api"), timeout=60)
        try:
            containers = wait_for(lambda: swarm_stack.converged("api", 1, image=image_id, before=before), timeout=DEADLINE,
                                  interval=0.5, what="the api's image update completed")
        except TimeoutError:
            pytest.fail(f"api update did not converge: {swarm_stack.update_status('api')}\n{swarm_stack.tasks('api')}{swarm_stack.logs('api')}")
        converge_seconds = time.monotonic() - started
    assert containers[0]["Id"] not in old
    assert containers[0]["Config"]["Image"] == new_image
    spec = docker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", swarm_stack.service("api")).stdout.strip()
    assert spec == new_image, spec
    api = workload.API(swarm_stack.api_url, swarm_stack.secret("admin_key"))
    workload.wait_ready(swarm_stack.api_url + "/health/ready", timeout=30)
    serving_seconds = time.monotonic() - started
    api.call("GET", "/v1/deployments?limit=1", wanted=200)
    finished = api.wait(api.create(service="after-update", replicas=1)["id"], timeout=60)
    assert finished["status"] == "succeeded", finished
    figures.append(f"api image update (stop-first) to {new_image.rsplit(':', 1)[1]}: UpdateStatus completed, new task healthy on the new "
                   f"image after {converge_seconds:.1f} s (monitor 3 s included); serving (authenticated GET and a deployment) after "
                   f"{serving_seconds:.1f} s; /health/ready unanswered for {availability.longest_gap():.1f} s (one replica, stop-first)")


def test_swarm_failed_update_rolls_back_by_itself(swarm_stack):
    """update_config failure_action rollback: a new task that exits (here: a configuration error, exit 78) makes Swarm
    restore the previous specification without the operator; the api serves again."""
    before = docker("service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec}}", swarm_stack.service("api")).stdout
    started = time.monotonic()
    # METRICS_PORT must differ from PORT: the new task exits 78 at once.
    docker("service", "update", "--env-add", "METRICS_PORT=8000", "--detach", swarm_stack.service("api"), timeout=60)
    states = []

    def rolled_back():
        state = swarm_stack.update_status("api").get("State")
        if not states or states[-1] != state:
            states.append(state)
        return state in ("rollback_completed", "rollback_paused", "paused") and state
    final = wait_for(rolled_back, timeout=DEADLINE, interval=0.5, what="the failed update rolled back")
    assert final == "rollback_completed", (states, swarm_stack.tasks("api"))
    rollback_seconds = time.monotonic() - started
    after = docker("service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec}}", swarm_stack.service("api")).stdout
    assert json.loads(after) == json.loads(before), "the rollback did not restore the previous specification"
    assert "non-zero exit (78)" in swarm_stack.tasks("api"), swarm_stack.tasks("api")
    wait_for(lambda: swarm_stack.healthy("api", 1), timeout=DEADLINE, interval=0.5, what="the api healthy after the rollback")
    workload.wait_ready(swarm_stack.api_url + "/health/ready", timeout=30)
    workload.API(swarm_stack.api_url, swarm_stack.secret("admin_key")).call("GET", "/v1/deployments?limit=1", wanted=200)
    swarm_figures().append(f"failed api update (new task exits 78): {' -> '.join(map(str, states))} after {rollback_seconds:.1f} s, "
                           f"previous specification restored and serving")


def test_swarm_stack_rm_leaves_no_task(swarm_stack, swarm):
    seconds = swarm_stack.remove()  # asserts that no service, container, network or secret of the stack is left
    assert not swarm_stack.containers(all_states=True), "docker stack rm leaves no task running"
    swarm_figures().append(f"docker stack rm: no task container left after {seconds:.1f} s; volume, networks and secrets removed"
                           + ("; the swarm is left at the end of the module" if swarm["created"] else ""))
