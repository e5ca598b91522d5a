"""The production combination (base + build + prod, images built here under the registry
names) with PostgreSQL and two workers on the webhook driver passes the same flows: healthy
containers, the same hardening, deployments spread over both workers, signed webhook deliveries with
retries, health_url verification, the MCP flow, and SIGTERM to exit 0."""
import os
from collections import Counter
from pathlib import Path

import pytest

from . import checks, workload
from .stacks import SERVICES, docker, free_port, free_port_pair, image_tag, inspect, start_stack, stop_stack

HERE = Path(__file__).resolve().parent
REGISTRY = "code-e2e.local"


@pytest.fixture(scope="module")
def prod(docker_engine):
    tag = image_tag()
    if docker("image", "inspect", "postgres:15-bookworm", check=False, timeout=30).returncode != 0:
        pytest.fail("postgres:15-bookworm is missing: scripts/ensure-base-images.sh --postgres")
    # compose.build.yaml names the images ${REGISTRY}/code-<service>:${VERSION}: give the images built
    # by scripts/test-containers.sh those names (same image ids), as a build with that overlay would.
    for image in SERVICES.values():
        docker("tag", f"{image}:{tag}", f"{REGISTRY}/{image}:{tag}")
    worker_port = free_port_pair()
    env = {
        "REGISTRY": REGISTRY, "VERSION": tag, "API_PORT": str(free_port()), "MCP_PORT": str(free_port()),
        "WORKER_PORT": str(worker_port), "WORKER_PORT_LAST": str(worker_port + 1), "RECEIVER_PORT": str(free_port()),
        "CODE_ROLLOUT_DRIVER": "webhook", "CODE_WEBHOOK_URL": "http://receiver:8080/hooks/rollout",
    }
    overlays = ["build", "prod", str(HERE / "compose.e2e.yaml")]
    stack = None
    try:
        stack = start_stack("code-e2e-prod", overlays, env, file_secrets=True)
        stack.urls = {
            "api": stack.published("api", 8000),
            "workers": [stack.published("worker", 8001, index) for index in (1, 2)],
            "mcp": stack.published("mcp", 3000) + "/mcp",
            "receiver": stack.published("receiver", 8080),
        }
        yield stack
    finally:
        if stack is not None:
            stop_stack(stack)
        for image in SERVICES.values():
            docker("rmi", f"{REGISTRY}/{image}:{tag}", check=False)


def service_containers(stack):
    return {f"{service}-{index}": container for service in SERVICES
            for index, container in enumerate(sorted(stack.containers(service)), start=1)}


def test_prod_every_container_is_healthy_with_two_workers(prod, measurements):
    assert len(prod.containers("worker")) == 2
    for service in ("api", "worker", "mcp", "postgres", "receiver"):
        for container in prod.containers(service):
            assert inspect(container)["State"]["Health"]["Status"] == "healthy", service
    api = inspect(prod.container("api"))
    assert api["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert api["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "5", "max-size": "100m"}}
    assert api["HostConfig"]["Memory"] == 512 * 1024 * 1024 and api["HostConfig"]["NanoCpus"] == 10**9
    assert "DATABASE_URL=postgres://code@postgres:5432/code" in api["Config"]["Env"]
    assert api["Config"]["Image"] == f"{REGISTRY}/{SERVICES['api']}:{image_tag()}"
    measurements.append(f"up --wait of the prod combination (PostgreSQL, two workers, receiver): {prod.up_seconds:.1f} s")


@pytest.mark.skipif(os.geteuid() != 0, reason="reads /proc/<pid> of container processes: needs root")
def test_prod_containers_have_the_same_hardening(prod):
    for name, container in service_containers(prod).items():
        checks.process_identity(container)
        checks.security_options(container)
        checks.runtime_filter(container)
        checks.read_only_root(container, ("/tmp",))
    checks.tmp_is_noexec(prod.container("api"))
    # Every container of the stack, PostgreSQL and the receiver included, runs within limits.
    for container in prod.containers():
        checks.resource_limits(container)


def test_prod_deployments_succeed_spread_over_both_workers_through_the_webhook(prod):
    admin = prod.secret("admin_key")
    seen = workload.api_flow(prod.urls["api"], admin, health_url="http://receiver:8080/healthz", slow_driver=False)
    verify = [e for e in seen["events"] if e["step"] == "verify" and e["kind"] == "finished"]
    assert verify and verify[-1]["outcome"] == "succeeded", verify
    api = workload.API(prod.urls["api"], admin)
    batch = [api.create(service=f"svc{i}", replicas=1)["id"] for i in range(10)]
    owners = Counter()
    for deployment_id in batch:
        finished = api.wait(deployment_id, timeout=120)
        assert finished["status"] == "succeeded", finished
        claims = [e for e in api.events(deployment_id) if e["step"] == "claim"]
        owners[claims[-1].get("worker_id")] += 1
    assert len(owners) == 2, f"the deployments went to {dict(owners)}, not to both workers"
    status, received, _ = workload.request("GET", prod.urls["receiver"] + "/deliveries")
    assert status == 200
    deliveries = received["deliveries"]
    assert deliveries and all(d["valid"] and d["event"] == "deployment.rollout" and d["has_manifests"] for d in deliveries), deliveries[:3]
    for deployment_id in batch:
        attempts = [d for d in deliveries if d["deployment_id"] == deployment_id]
        assert [d["status"] for d in attempts] == [503, 200], ("retried after the 503", attempts)
    assert received["health_checks"] >= 1, "the worker polled health_url"


def test_prod_workers_answer_on_both_published_ports(prod):
    ids = set()
    for url in prod.urls["workers"]:
        status = workload.worker_status(url, prod.secret("mcp_api_key"))
        assert status["driver"] == "webhook", status
        ids.add(status["worker_id"])
    assert len(ids) == 2, ids


def test_prod_mcp_flow(prod):
    seen = workload.mcp_flow(prod.urls["mcp"], prod.secret("mcp_auth_token"))
    assert seen["deployment"]["status"] == "succeeded", seen["deployment"]
    assert seen["health"] == {"api": "ready", "worker": "ready", "mcp": "ready"}


def test_prod_stop_exits_0(prod, measurements):
    containers = service_containers(prod)
    postgres = prod.container("postgres")
    prod.compose("stop", timeout=180)
    for name, container in containers.items():
        state = inspect(container)["State"]
        assert state["ExitCode"] == 0 and not state["OOMKilled"], (name, state)
    measurements.append(f"prod stop: {', '.join(sorted(containers))} exited 0; postgres exited "
                        f"{inspect(postgres)['State']['ExitCode']}")
