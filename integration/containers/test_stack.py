"""The hardened stack (the base file, SQLite) works end to end: healthy containers, a deployment
through the API and the worker to `succeeded` with manifests, every API route, the worker's status,
Prometheus on each container, and the MCP flow with the official Python client."""
from . import workload
from .stacks import SERVICES, docker, inspect, network_ip


def test_every_container_is_healthy_through_its_own_healthcheck(stack):
    for service in SERVICES:
        container = stack.container(service)
        state = inspect(container)["State"]
        assert state["Status"] == "running", (service, state)
        health = state["Health"]
        assert health["Status"] == "healthy", (service, health)
        # The healthcheck (`docker exec` of the binary's --health-check under the same seccomp
        # profile) passed every time it ran.
        assert health["Log"] and all(entry["ExitCode"] == 0 for entry in health["Log"]), (service, health["Log"][-3:])
        assert "healthy" in health["Log"][-1]["Output"], health["Log"][-1]


def test_ports_are_published_on_loopback_only(stack):
    published = {}
    for service in SERVICES:
        ports = inspect(stack.container(service))["NetworkSettings"]["Ports"]
        for container_port, bindings in ports.items():
            for binding in bindings or []:
                assert binding["HostIp"] == "127.0.0.1", (service, container_port, binding)
                published[f"{service} {container_port}"] = binding["HostPort"]
        assert "9090/tcp" not in {port for port, bindings in ports.items() if bindings}, f"{service} publishes its metrics port"
    assert len(published) == len(SERVICES), published


def test_a_deployment_runs_through_the_worker_to_succeeded_with_manifests(stack, urls):
    seen = workload.api_flow(urls["api"], stack.secret("admin_key"))
    deployment = seen["deployment"]
    assert deployment["status"] == "succeeded" and deployment["attempt"] == 1, deployment
    assert "kind: Deployment" in seen["manifests"]["kubernetes"]
    assert "services:" in seen["manifests"]["compose"]
    steps = [(e["step"], e["kind"]) for e in seen["events"]]
    for step in ("validate", "render", "rollout", "verify", "finish"):
        assert any(name == step for name, _ in steps), (step, steps)
    assert seen["cancelled"]["status"] == "cancelled"
    actions = {entry.get("action") for entry in seen["audit"]}
    assert len(actions) >= 3, actions


def test_worker_status_and_prometheus_metrics_of_each_container(stack, urls):
    status = workload.worker_status(urls["worker"], stack.secret("mcp_api_key"))
    assert status["driver"] == "simulated" and status["draining"] is False, status
    for service, binary in SERVICES.items():
        # The metrics port stays on the project's network: scraped at the container's address.
        text = workload.metrics(f"http://{network_ip(stack.container(service))}:9090")
        assert f'service="{binary}"' in text, text[:300]


def test_mcp_flow_with_the_official_python_client(stack, urls):
    seen = workload.mcp_flow(urls["mcp"], stack.secret("mcp_auth_token"))
    assert set(seen["tools"]) == {"list_deployments", "get_deployment", "create_deployment", "cancel_deployment", "get_manifests", "service_health"}
    assert seen["deployment"]["status"] == "succeeded", seen["deployment"]
    assert len(seen["progress"]) >= 3, seen["progress"]
    assert [value for value, _ in seen["progress"]] == sorted(value for value, _ in seen["progress"])
    assert "readOnlyRootFilesystem: true" in seen["manifests"]["kubernetes"]
    assert seen["health"] == {"api": "ready", "worker": "ready", "mcp": "ready"}
    assert "production-requires-digest" in seen["policy"]
    assert seen["resource"]["deployment"]["status"] == "succeeded"
    assert "DELETE" in seen["methods"]
    # The deployment the MCP server created is the API's own.
    api = workload.API(urls["api"], stack.secret("admin_key"))
    assert api.get(seen["deployment"]["id"])["created_by"], "created through code-api with code-mcp's key"


def test_mcp_refuses_requests_without_the_token(stack, urls):
    status, _, headers = workload.request("POST", urls["mcp"], body={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
                                          headers={"Accept": "application/json, text/event-stream"})
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer", status


def test_the_healthcheck_fails_when_the_service_does_not_answer(stack):
    """The healthcheck is not a constant: --health-check against a port nothing listens on exits 1."""
    result = docker("exec", "-e", "PORT=1", stack.container("api"), "/app/service", "--health-check", check=False, timeout=30)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
