"""scripts/new-service.sh end to end, in a temporary copy of the repository (what a fresh clone has,
with this working tree's changes): generate code-notify, check that it edited only the files it wires
services into and that a refused name or port changes nothing, build it and run its own tests, run the
Kubernetes checks on the copy's manifests (the generated service is in every overlay, hardened) and
the Swarm stack-file check,
then build every image of the copy and bring the generated service up in the hardened stack next to
the others, with the same checks the three services get. The copy, its stack and its images are
removed afterwards."""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from . import checks, workload
from .stacks import (ROOT, SERVICE_LIST, copy_repository, docker, free_port, git_status, inspect, load_services, network_ip, port_variable,
                     run, start_stack, stop_stack, writable_paths)

NAME, PORT = "code-notify", 8002
# Images of the copy get a tag of their own, so that the suite's images (VERSION, default dev) stay.
TAG = "0.0.0-generated"
# The files a generated service is wired through (scripts/new_service.py's WIRING, plus the list and
# the package); everything else it adds is new.
EDITED = {"services.json", "Package.swift", "compose/compose.yaml", "deploy/kubernetes/base/kustomization.yaml",
          "deploy/kubernetes/overlays/dev/kustomization.yaml", "deploy/kubernetes/overlays/prod/kustomization.yaml",
          "deploy/swarm/stack.yaml", "Sources/code-services/main.swift"}
GENERATED = {"Sources/CodeNotify/Application+build.swift", "Sources/CodeNotify/GreetingRoutes.swift",
             "Sources/CodeNotify/NotifySettings.swift", "Sources/CodeNotify/CodeNotifyCommand.swift",
             "Sources/code-notify/CodeNotifyMain.swift",
             "Tests/CodeNotifyTests/CodeNotifyTests.swift", "docs/services/code-notify.md",
             *(f"deploy/kubernetes/base/code-notify/{name}.yaml"
               for name in ("kustomization", "deployment", "service", "pdb", "networkpolicy"))}


@pytest.fixture(scope="module")
def copy():
    directory = Path(tempfile.mkdtemp(prefix="code-e2e-new-service-"))
    try:
        repository = copy_repository(directory / "repo")
        result = run([str(repository / "scripts" / "new-service.sh"), NAME, str(PORT)], check=False, timeout=60)
        assert result.returncode == 0, result.stderr
        yield repository
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_generator_edits_three_existing_files_and_adds_the_service(copy):
    changes = git_status(copy)
    modified = {path for status, path in changes if status == "M"}
    added = {path for status, path in changes if status == "??"}
    assert modified == EDITED, changes
    assert added == GENERATED, changes
    listed = {service["name"]: service for service in load_services(copy)}
    assert listed[NAME] == {"name": NAME, "compose": "notify", "port": PORT,
                            "description": f"{NAME}: a CODE service generated from templates/service", "needs": []}
    assert 'GeneratedService(name: "code-notify", module: "CodeNotify")' in (copy / "Package.swift").read_text()
    # In the multi-call binary that every image runs: imported and in its table of services.
    multi_call = (copy / "Sources" / "code-services" / "main.swift").read_text()
    assert "import CodeNotify\n" in multi_call and "    CodeNotifyCommand.self,\n" in multi_call, multi_call


@pytest.mark.parametrize("arguments, message", [
    ([NAME, "8003"], "NAME 'code-notify' is taken"),
    (["code-other", str(SERVICE_LIST[0]["port"])], f"PORT {SERVICE_LIST[0]['port']} is taken by {SERVICE_LIST[0]['name']}"),
    (["code-other", str(PORT)], f"PORT {PORT} is taken by code-notify"),
    (["code-other", "9090"], "PORT 9090 is taken"),
    (["code-runtime", "8010"], "NAME 'code-runtime' is taken"),
    (["Code_Other", "8004"], "is malformed"),
    (["code-other", "80"], "PORT '80' is malformed"),
    (["code-other", "eighty"], "is malformed"),
    (["code-other"], "usage: scripts/new-service.sh NAME PORT"),
])
def test_generator_refuses_and_changes_nothing(copy, arguments, message):
    before = git_status(copy)
    contents = {path: (copy / path).read_bytes() for path in EDITED}
    result = run([str(copy / "scripts" / "new-service.sh"), *arguments], check=False, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert git_status(copy) == before
    assert {path: (copy / path).read_bytes() for path in EDITED} == contents


def test_generated_service_builds_and_its_own_tests_pass(copy, measurements):
    # The repository's build folder serves as the copy's: the dependencies are compiled already
    # (`make test` built them for the Swift suites), only the package's own modules recompile.
    scratch = ["--scratch-path", str(ROOT / ".build")]
    built = run(["swift", "build", "--build-tests", *scratch], timeout=1800, check=False, cwd=copy)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    tested = run(["swift", "test", "--skip-build", *scratch, "--filter", "CodeNotifyTests"], timeout=600, check=False, cwd=copy)
    assert tested.returncode == 0, tested.stdout[-6000:] + tested.stderr[-3000:]
    passed = [line for line in tested.stdout.splitlines() if "passed after" in line and "Test run with" in line]
    assert passed and "7 tests" in passed[-1], passed
    measurements.append(f"new-service: the generated service's own tests: {passed[-1].strip()}")


def test_generated_service_passes_the_kubernetes_checks(copy, measurements):
    # The copy's own Kubernetes suite: every overlay renders with code-notify in it, validates
    # strictly, satisfies the restricted Pod Security Standard and the project's rules, and trivy and
    # checkov find nothing. checkov's venv is this repository's (built by the integration suites).
    env = {**os.environ, "CHECKOV_VENV": str(ROOT / ".venv" / "checkov")}
    result = run([str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "integration/kubernetes"],
                  timeout=600, check=False, cwd=copy, env=env)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    rendered = run(["kubectl", "kustomize", str(copy / "deploy" / "kubernetes" / "overlays" / "prod")], timeout=60).stdout
    assert "image: ghcr.io/OWNER/code-notify:VERSION" in rendered, rendered[:2000]
    summary = [line for line in result.stdout.splitlines() if " passed" in line]
    measurements.append(f"new-service: the copy's Kubernetes checks with code-notify: {summary[-1].strip() if summary else '?'}")


def test_generated_service_is_in_the_swarm_stack_hardened(copy):
    # The copy's own stack-file check (no engine): the service is in deploy/swarm/stack.yaml with
    # everything Swarm can enforce, its token an external secret.
    result = run([str(ROOT / ".venv" / "bin" / "pytest"), "-q", "-p", "no:cacheprovider", "integration/containers/test_swarm.py",
                  "-k", "stack_file"], timeout=120, check=False, cwd=copy)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout[-4000:] + result.stderr[-2000:]
    stack = (copy / "deploy" / "swarm" / "stack.yaml").read_text()
    assert "/code-notify:${VERSION" in stack and "_service_token" in stack, stack[-3000:]


@pytest.fixture(scope="module")
def generated_stack(copy, docker_engine):
    env = {**os.environ, "VERSION": TAG, "COMPOSE_BAKE": "false", "DOCKER_BUILDKIT": "1", "COMPOSE_DOCKER_CLI_BUILD": "1"}
    run(["docker", "compose", "-f", str(copy / "compose" / "compose.yaml"), "build"], timeout=2400, env=env)
    services = load_services(copy)
    ports = {port_variable(service): str(free_port()) for service in services}
    stack = start_stack("code-e2e-generated", [], {"VERSION": TAG, **ports}, compose_dir=copy / "compose")
    try:
        yield stack, services
    finally:
        stop_stack(stack)
        for service in services:
            docker("rmi", f"{service['name']}:{TAG}", check=False)


def test_generated_service_runs_hardened_next_to_the_others(generated_stack):
    stack, services = generated_stack
    assert NAME in {service["name"] for service in services}
    for service in services:
        container = stack.container(service["compose"])
        state = inspect(container)["State"]
        assert state["Health"]["Status"] == "healthy", (service["name"], state["Health"])
        checks.runtime_image_contents(f"{service['name']}:{TAG}")
        metrics = workload.metrics(f"http://{network_ip(container)}:9090")
        assert f'service="{service["name"]}"' in metrics, metrics[:300]
        if os.geteuid() == 0:  # /proc/<pid> of container processes and the OCI bundles
            identity = checks.process_identity(container)
            assert identity["seccomp_filters"] == "1", identity
            checks.security_options(container)
            checks.runtime_filter(container)
            checks.read_only_root(container, writable_paths(service))
            checks.tmp_is_noexec(container)


def test_generated_service_answers_with_the_development_token(generated_stack):
    stack, _ = generated_stack
    url = stack.published("notify", PORT)
    status, body, _ = workload.request("POST", f"{url}/v1/greetings", key=stack.secret("service_token"), body={"name": "Ada"})
    assert (status, body) == (201, {"message": "Hello, Ada!"})
    status, body, headers = workload.request("POST", f"{url}/v1/greetings", body={"name": "Ada"})
    assert status == 401 and body["code"] == "unauthorized" and headers["WWW-Authenticate"] == "Bearer", body
