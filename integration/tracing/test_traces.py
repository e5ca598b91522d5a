"""Distributed traces end to end: code-mcp, code-api and code-worker (webhook driver) as real processes
exporting OTLP/HTTP to a receiver on loopback. One MCP `create_deployment` call with `wait` must make one
trace that runs from the MCP request through code-api and its database to the worker's pipeline steps
and the webhook, each span a child of the one that caused it, and the log lines of that work must carry
the trace's id. With no OTLP endpoint set, nothing is exported and no log line has a trace id."""
import json
import secrets
import time
import urllib.request

import anyio
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import free_port
from conftest import new_key
from containers.workload import WebhookReceiver
from tracing.otlp_receiver import OTLPReceiver

STEPS = ["pipeline.validate", "pipeline.render", "pipeline.rollout", "pipeline.verify"]


@pytest.fixture
def webhook():
    receiver = WebhookReceiver("whsec-" + new_key(), answer=lambda index, attempt: 200)
    yield receiver
    receiver.close()


@pytest.fixture(params=["http", "grpc"])
def otlp(request):
    receiver = OTLPReceiver(request.param)
    receiver.protocol = request.param
    yield receiver
    receiver.close()


def start_stack(services, workdir, webhook, telemetry):
    admin, mcp_key = new_key(), new_key()
    token = "mcp-" + secrets.token_urlsafe(24)
    database = f"sqlite://{workdir}/code.db"
    (workdir / "webhook_secret").write_text(webhook.secret.decode() + "\n")
    (workdir / "mcp_token").write_text(token + "\n")
    api = services("code-api", {"DATABASE_URL": database, "CODE_ADMIN_KEY": admin, "CODE_MCP_API_KEY": mcp_key, **telemetry})
    worker = services("code-worker", {
        "DATABASE_URL": database, "CODE_ROLLOUT_DRIVER": "webhook", "CODE_WEBHOOK_URL": webhook.url,
        "CODE_WEBHOOK_SECRET_FILE": str(workdir / "webhook_secret"), "CODE_HEALTH_URL_ALLOW": "127.0.0.1", **telemetry,
    })
    mcp = services("code-mcp", {
        "CODE_API_URL": api.url, "CODE_WORKER_URL": worker.url, "MCP_API_KEY": mcp_key,
        "MCP_AUTH_TOKENS_FILE": str(workdir / "mcp_token"), **telemetry,
    })
    return {"api": api, "worker": worker, "mcp": mcp, "url": mcp.url + "/mcp", "token": token, "health_url": webhook.base_url + "/health"}


def create_with_wait(stack):
    async def scenario():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack['token']}"}, timeout=httpx2.Timeout(30, read=120))
        async with Client(streamable_http_client(stack["url"], http_client=http), mode="legacy") as client:
            created = await client.call_tool(
                "create_deployment",
                {"service": "web", "image": "ghcr.io/acme/web:1.2.3", "environment": "staging", "health_url": stack["health_url"], "wait": True})
            assert not created.is_error, created
            return created.structured_content["deployment"]
    return anyio.run(scenario)


def log_lines(service):
    lines = []
    for raw in service.log_path.read_text().splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            pass
    return lines


def warnings_logged(stack):
    """What the services logged at warning or above (a span exporter's failed batch, for one): why a trace
    did not arrive whole, when it does not."""
    return "\n".join(f"{name}: {line}" for name in ("api", "worker", "mcp") for line in log_lines(stack[name])
                     if line.get("level") in ("warning", "error", "critical")) or "(no service logged a warning)"


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def test_one_mcp_call_makes_one_trace_from_the_tool_call_to_the_webhook(services, workdir, otlp, webhook):
    # A short batch delay so spans arrive within the test; the rest is swift-otel's defaults.
    telemetry = {"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    if otlp.protocol == "grpc":
        telemetry["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
    stack = start_stack(services, workdir, webhook, telemetry)
    deployment = create_with_wait(stack)
    assert deployment["status"] == "succeeded", deployment

    tool_calls = wait_for(lambda: otlp.find("tools/call create_deployment"))
    assert len(tool_calls) == 1, tool_calls
    trace_id = tool_calls[0].trace_id
    # Each process exports in its own batches: the trace is whole when the worker's pipeline has arrived,
    # every call code-mcp made has code-api's server span under it, and the tool call's parent, the /mcp
    # request's server span, has arrived too (it ends after the answer is written, so it can come in a later
    # batch than the tool call's own span).
    def whole(trace):
        calls = [s for s in trace if s.service == "code-mcp" and s.kind == "client"]
        answered = all(any(a.parent_id == c.span_id for a in trace) for c in calls)
        request_arrived = any(s.span_id == tool_calls[0].parent_id for s in trace)
        pipeline_arrived = any(s.name == "deployment.pipeline" for s in trace)
        return trace if calls and answered and request_arrived and pipeline_arrived else None

    spans = wait_for(lambda: whole(otlp.trace(trace_id)))
    assert spans, f"trace {trace_id} incomplete: {otlp.trace(trace_id)}\n{warnings_logged(stack)}"
    by_id = {span.span_id: span for span in spans}
    assert len(by_id) == len(spans), "span ids are unique"

    def one(service, name, kind=None, parent=None):
        found = [s for s in spans if s.service == service and s.name == name and (kind is None or s.kind == kind)
                 and (parent is None or s.parent_id == parent.span_id)]
        assert len(found) == 1, f"{service} {name} under {parent}: {found}\nall: {spans}"
        return found[0]

    assert {span.service for span in spans} == {"code-mcp", "code-api", "code-worker"}
    # code-mcp: the /mcp request's server span, the tool call in it, and the tool's call to code-api.
    tool = tool_calls[0]
    mcp_request = by_id[tool.parent_id]
    assert (mcp_request.service, mcp_request.kind, mcp_request.name) == ("code-mcp", "server", "/mcp")
    assert tool.attributes["gen_ai.tool.name"] == "create_deployment"
    api_calls = [s for s in spans if s.service == "code-mcp" and s.kind == "client" and s.parent_id == tool.span_id]
    assert api_calls and {s.name for s in api_calls} <= {"GET", "POST"}, api_calls
    post = one("code-mcp", "POST", "client", tool)
    # code-api: the create request, a child of code-mcp's client span, and its database transaction.
    create = one("code-api", "/v1/deployments", "server", post)
    assert create.attributes["http.request.method"] == "POST" and create.attributes["http.response.status_code"] == 201
    insert = one("code-api", "db deployment.create", "client", create)
    assert insert.attributes["db.system.name"] == "sqlite"
    # Polls of `wait` are code-api server spans under code-mcp's GET client spans, all in the same trace.
    gets = [s for s in api_calls if s.name == "GET"]
    assert gets and all(any(a.parent_id == g.span_id and a.service == "code-api" for a in spans) for g in gets)
    # code-worker: the pipeline continues the create request's span (stored with the deployment).
    pipeline = one("code-worker", "deployment.pipeline", "consumer", create)
    assert pipeline.attributes["code.deployment.id"] == deployment["id"]
    assert pipeline.attributes["code.deployment.outcome"] == "succeeded"
    steps = {name: one("code-worker", name, "internal", pipeline) for name in STEPS}
    assert [s.name for s in sorted(steps.values(), key=lambda s: s.start)] == STEPS, "steps in order"
    for step in steps.values():
        assert step.start >= pipeline.start and step.end <= pipeline.end
        writes = [s.name for s in spans if s.parent_id == step.span_id and s.name.startswith("db ")]
        if step.name == "pipeline.validate":
            # Validate works inside the worker: its events go out with render's manifests.
            assert not writes, f"validate wrote nothing of its own: {writes}"
        elif step.name == "pipeline.render":
            assert writes == ["db queue.manifests"], f"render wrote the manifests and the events so far: {writes}"
        else:
            assert writes, f"{step.name} recorded its events in the database under its span"
    hook = one("code-worker", "POST", "client", steps["pipeline.rollout"])
    probe = one("code-worker", "GET", "client", steps["pipeline.verify"])
    # The webhook receiver and the health URL got the trace context, naming the worker's client span.
    assert len(webhook.deliveries) == 1
    assert webhook.deliveries[0]["traceparent"] == f"00-{trace_id}-{hook.span_id}-01"
    assert f"00-{trace_id}-{probe.span_id}-01" in webhook.health_traceparents
    # Every trace starts at a request: the worker's polling (claims, lease renewals) and the readiness checks
    # (the fixture polls /health/ready, which makes code-mcp probe code-api) start none.
    roots = [s for s in otlp.spans if s.parent_id is None]
    assert roots and all(s.kind == "server" for s in roots), [s for s in roots if s.kind != "server"]
    assert not [s for s in otlp.spans if s.name.startswith("/health")], "health probes are not traced"

    # Log lines carry the trace: code-api's access line of the create, and code-mcp's of the /mcp request.
    access = [line for line in log_lines(stack["api"]) if line.get("message") == "request" and line.get("route") == "/v1/deployments"
              and line.get("method") == "POST"]
    assert len(access) == 1 and access[0]["trace_id"] == trace_id and access[0]["span_id"] == create.span_id, access
    created = [line for line in log_lines(stack["api"]) if line.get("message") == "deployment created"]
    assert created and created[0]["trace_id"] == trace_id, created
    mcp_access = [line for line in log_lines(stack["mcp"]) if line.get("message") == "request" and line.get("span_id") == mcp_request.span_id]
    assert len(mcp_access) == 1 and mcp_access[0]["trace_id"] == trace_id
    expected = "application/grpc" if otlp.protocol == "grpc" else "application/x-protobuf"
    assert otlp.requests and all(r["content_type"] == expected for r in otlp.requests), "OTLP/gRPC, or OTLP/HTTP protobuf (the default)"
    print(f"OTLP/{otlp.protocol}: trace {trace_id}: {len(spans)} spans across {sorted({s.service for s in spans})}")


def test_without_an_endpoint_nothing_is_traced(services, workdir, webhook):
    stack = start_stack(services, workdir, webhook, {})
    deployment = create_with_wait(stack)
    assert deployment["status"] == "succeeded"
    assert webhook.deliveries[0]["traceparent"] is None, "no trace context leaves the worker"
    for name in ("api", "worker", "mcp"):
        lines = log_lines(stack[name])
        assert lines and not [line for line in lines if "trace_id" in line], f"{name} logged a trace id with tracing off"
        assert any(line.get("message") == "starting" and line.get("tracing") == "off" for line in lines)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_collector_that_does_not_answer_costs_spans_not_a_clean_exit(services, workdir, protocol):
    # Nothing listens on the collector's port: both exporters keep retrying the connection until their 10 s
    # timeout, and on SIGTERM they still hold a batch in flight and one to flush. The service must exit 0
    # within the exporter's 1.5 s budget (plus start-up slack), long before SHUTDOWN_TIMEOUT and a SIGKILL.
    telemetry = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    if protocol == "grpc":
        telemetry["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
    admin = new_key()
    api = services("code-api", {"DATABASE_URL": f"sqlite://{workdir}/code.db", "CODE_ADMIN_KEY": admin, **telemetry})
    for _ in range(3):
        request = urllib.request.Request(api.url + "/v1/deployments", headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        time.sleep(0.3)
    signalled = time.monotonic()
    status = api.stop()
    took = time.monotonic() - signalled
    assert status == 0, api.log_path.read_text()[-1500:]
    assert took < 5.0, f"exit took {took:.2f} s"
    stopped = [line for line in log_lines(api) if line.get("message", "").startswith("span exporter stopped")]
    assert stopped and stopped[0]["budget"] == "1.5 seconds", log_lines(api)[-5:]
    print(f"OTLP/{protocol} collector not answering: code-api exited 0 {took:.2f} s after SIGTERM")
