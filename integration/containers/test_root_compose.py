"""`docker compose up` from the root of a fresh copy of the repository, with no script first: the
images are built from docker/Dockerfile, whose only base images are what a registry gives
(swift:6.3-bookworm and debian:bookworm-slim; the runtime is a stage assembled from Debian
packages, no local-only image), the development secrets are created on first start, every service
becomes healthy and a deployment flows through api and worker."""
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from . import workload
from .stacks import ROOT, SCRUBBED, copy_repository, docker, free_port, inspect, load_services, owned_name, port_variable, run

TAG = "0.0.0-root"
REGISTRY_IMAGES = {"swift:6.3-bookworm", "debian:bookworm-slim"}


def base_images(dockerfile: Path) -> set[str]:
    """The images docker/Dockerfile starts FROM, with the defaults of its ARGs (stage names excluded)."""
    text = dockerfile.read_text()
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", text, re.MULTILINE))
    images = set()
    for image in re.findall(r"^FROM (\S+)", text, re.MULTILINE):
        image = re.sub(r"\$\{(\w+)\}", lambda match: defaults.get(match.group(1), match.group(0)), image)
        if image != "scratch" and image not in stages:
            images.add(image)
    return images


def test_the_dockerfile_and_the_root_stack_need_only_registry_images():
    assert base_images(ROOT / "docker" / "Dockerfile") == REGISTRY_IMAGES
    config = run(["docker", "compose", "config", "--images"], cwd=ROOT, env={k: v for k, v in os.environ.items() if k not in SCRUBBED})
    pulled = set(config.stdout.split()) - {f"{service['name']}:dev" for service in load_services()}
    assert pulled == {"debian:bookworm-slim"}, pulled


def test_the_root_stack_passes_optional_settings_through_only_when_set():
    """compose.yaml's keys without a value: set where compose runs, the service gets it; unset, the
    container does not get the variable at all (the service's default)."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}

    def environment(service, **variables):
        config = run(["docker", "compose", "config", "--format", "json"], cwd=ROOT, env={**env, **variables})
        return json.loads(config.stdout)["services"][service]["environment"]

    assert environment("api", CODE_KEY_CACHE_SECONDS="0").get("CODE_KEY_CACHE_SECONDS") == "0"
    # null in the rendered file: a key without a value, which compose leaves out of the container's environment.
    assert environment("api")["CODE_KEY_CACHE_SECONDS"] is None
    # The registry policy reaches both services that enforce it: the api when a deployment is created, the
    # worker again before it rolls the image out.
    for service in ("api", "worker"):
        assert environment(service, CODE_ALLOWED_REGISTRIES="ghcr.io").get("CODE_ALLOWED_REGISTRIES") == "ghcr.io", service


@pytest.fixture(scope="module")
def root_stack(docker_engine):
    directory = Path(tempfile.mkdtemp(prefix="code-e2e-root-"))
    repository = copy_repository(directory / "repo")
    services = load_services(repository)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    # Its own project name and ports, so that a stack a developer runs is not touched.
    env.update({"COMPOSE_PROJECT_NAME": owned_name("code-e2e-root"), "VERSION": TAG, "BIND_ADDRESS": "127.0.0.1",
                "COMPOSE_BAKE": "false", **{port_variable(service): str(free_port()) for service in services}})

    def compose(*args, timeout=300, check=True):
        return run(["docker", "compose", *args], cwd=repository, env=env, timeout=timeout, check=check)

    try:
        # What the README tells a new user, from the repository root, with the project's own ports.
        result = compose("up", "--build", "--wait", "--wait-timeout", "300", timeout=2400, check=False)
        if result.returncode != 0:
            logs = compose("logs", "--no-color", "--tail", "60", check=False).stdout
            raise AssertionError(f"docker compose up failed: {result.stderr[-3000:]}\n{logs[-6000:]}")
        yield compose, env, services, repository
    finally:
        compose("down", "-v", "--remove-orphans", "--timeout", "15", timeout=180, check=False)
        for service in services:
            docker("rmi", f"{service['name']}:{TAG}", check=False)
        shutil.rmtree(directory, ignore_errors=True)


def test_docker_compose_up_from_the_root_becomes_healthy_and_a_deployment_flows(root_stack):
    compose, env, services, repository = root_stack
    for service in services:
        container = compose("ps", "-q", service["compose"]).stdout.strip()
        assert inspect(container)["State"]["Health"]["Status"] == "healthy", service["name"]
    # The admin key, read the way the README says.
    admin = run(["sh", "-c", 'docker compose -p "$1" cp api:/run/secrets/admin_key - | tar -xO', "sh", env["COMPOSE_PROJECT_NAME"]],
                cwd=repository, env=env).stdout
    assert admin.startswith("code_"), "a generated admin key"
    api = workload.API(f"http://127.0.0.1:{env['API_PORT']}", admin)
    deployment = api.create(replicas=1)
    finished = api.wait(deployment["id"], timeout=120)
    assert finished["status"] == "succeeded" and finished["attempt"] == 1, finished
