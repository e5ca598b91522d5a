"""Fixtures of the container suite: the images built by scripts/test-containers.sh, run with docker
compose under a project name of its own, on free ports of 127.0.0.1, with development secrets in a
temporary folder, so that a stack a developer runs at the same time is not touched.

- `stack`: the base file (hardened; what `make up` and `docker compose up` run) on SQLite, for the
  whole session, with the development secrets secrets-init creates;
- `prod` (test_prod.py): base + build + prod on PostgreSQL with two workers, file secrets and
  the webhook driver against a receiver container (compose.e2e.yaml);
- both are torn down with `down -v` at the end, even when a test fails; projects a killed or timed-out
  run left behind are removed at the start (stacks.py's owned_name: each name carries its run's pid).

Environment: VERSION (image tag, default dev, as compose.yaml), CODE_E2E_SECCOMP_PROFILE (a
profile to use instead of compose/seccomp/code-services.json: scripts/seccomp/derive.py's audit
variant), CODE_E2E_KEEP=1 (leave the stacks up for debugging), CODE_E2E_SKIP_LINTS=1.
"""
from __future__ import annotations

import json
import os

import pytest
from conftest import reported

from .stacks import (PROBE_IMAGE, ROOT, RUNTIME_ROOTFS_IMAGE, SERVICE_LIST, docker, free_port, image_tag, port_variable,
                     remove_interrupted_projects, require_images, run, start_stack, stop_stack)


@pytest.fixture(scope="session")
def docker_engine(measurements):
    result = docker("info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if result.returncode != 0:
        pytest.exit("the Docker engine does not answer (scripts/ci/install-docker.sh starts it)", returncode=2)
    require_images()
    removed = remove_interrupted_projects()
    if removed:
        measurements.append(f"compose projects left by an interrupted run of the suite, removed: {', '.join(removed)}")
    return result.stdout.strip()


@pytest.fixture(scope="session")
def stack(docker_engine, measurements):
    """The base file on SQLite: the README run command, on ports of its own."""
    env = {port_variable(service): str(free_port()) for service in SERVICE_LIST}
    stack = start_stack("code-e2e", [], env)
    measurements.append(f"up --wait of the base file (SQLite, hardened), first start: {stack.up_seconds:.1f} s")
    yield stack
    stop_stack(stack)


@pytest.fixture(scope="session")
def urls(stack):
    return {
        "api": stack.published("api", 8000),
        "worker": stack.published("worker", 8001),
        "mcp": stack.published("mcp", 3000) + "/mcp",
    }


@pytest.fixture(scope="session")
def probe_image(docker_engine):
    """The seccomp probe (scripts/seccomp/probe.c, static) on the services' runtime root file system
    (docker/Dockerfile's runtime-rootfs stage)."""
    # Through compose, which builds with BuildKit in the daemon whichever docker client is first on
    # PATH (a 28.x client without buildx would fall back to the legacy builder).
    definition = json.dumps({"services": {
        "rootfs": {"image": RUNTIME_ROOTFS_IMAGE, "build": {
            "context": str(ROOT), "dockerfile": "docker/Dockerfile", "target": "runtime-rootfs"}},
        "probe": {"image": PROBE_IMAGE, "build": {
            "context": str(ROOT / "scripts" / "seccomp"), "dockerfile": "Dockerfile", "args": {"RUNTIME_IMAGE": RUNTIME_ROOTFS_IMAGE}}},
    }})
    run(["docker", "compose", "-p", "code-seccomp-probe", "-f", "-", "build", "--quiet", "rootfs"], input=definition,
        timeout=600, env={**os.environ, "COMPOSE_BAKE": "false"})
    run(["docker", "compose", "-p", "code-seccomp-probe", "-f", "-", "build", "--quiet", "probe"], input=definition,
        timeout=600, env={**os.environ, "COMPOSE_BAKE": "false"})
    return PROBE_IMAGE


@pytest.fixture(scope="session")
def symbols_file(docker_engine, tmp_path_factory):
    """code-services.debug of the images under test: docker/Dockerfile's `symbols` target, built with
    the images' VERSION and REVISION (compose.yaml's build arguments), so that BuildKit serves the
    `build` stage they were made from: the debug file of exactly their binary."""
    tag = image_tag()
    image = f"code-e2e.local/code-services-symbols:{tag}"
    args = {"VERSION": os.environ.get("VERSION") or "0.0.0-dev", "REVISION": os.environ.get("REVISION") or "unknown"}
    definition = json.dumps({"services": {"symbols": {"image": image, "build": {
        "context": str(ROOT), "dockerfile": "docker/Dockerfile", "target": "symbols", "args": args}}}})
    run(["docker", "compose", "-p", "code-e2e-symbols", "-f", "-", "build", "--quiet", "symbols"], input=definition,
        timeout=1800, env={**os.environ, "COMPOSE_BAKE": "false"})
    directory = tmp_path_factory.mktemp("symbols")
    container = docker("create", image, "/none").stdout.strip()
    try:
        docker("cp", f"{container}:/code-services.debug", str(directory))
    finally:
        docker("rm", "-f", container, check=False)
        docker("rmi", image, check=False)
    path = directory / "code-services.debug"
    path.chmod(0o644)
    directory.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def measurements():
    """Figures the suite measured (image sizes, drain times, start-up): printed at the end."""
    return reported("container measurements")
