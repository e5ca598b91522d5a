"""Interoperability with the official Python MCP SDK (PyPI `mcp`, its client in legacy mode) against the
live servers: code-api, code-worker and code-mcp as real processes on loopback."""
import json
import secrets

import anyio
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import new_key

TOOLS = {"list_deployments", "get_deployment", "create_deployment", "cancel_deployment", "get_manifests", "service_health"}


@pytest.fixture
def stack(services, workdir):
    admin, mcp_key = new_key(), new_key()
    token = "mcp-" + secrets.token_urlsafe(24)
    database = f"sqlite://{workdir}/code.db"
    api = services("code-api", {"DATABASE_URL": database, "CODE_ADMIN_KEY": admin, "CODE_MCP_API_KEY": mcp_key})
    worker = services("code-worker", {"DATABASE_URL": database, "CODE_SIMULATED_STEP_MS": "100"})
    (workdir / "mcp_token").write_text(token + "\n")
    mcp = services("code-mcp", {
        "CODE_API_URL": api.url, "CODE_WORKER_URL": worker.url, "MCP_API_KEY": mcp_key,
        "MCP_AUTH_TOKENS_FILE": str(workdir / "mcp_token"), "MCP_ALLOWED_ORIGINS": "http://localhost:6274",
    })
    return {"url": mcp.url + "/mcp", "token": token}


def run(coroutine):
    return anyio.run(coroutine)


def test_official_client_drives_every_capability(stack):
    sessions, methods = [], []

    async def record(response):
        methods.append(response.request.method)
        if "mcp-session-id" in response.headers:
            sessions.append(response.headers["mcp-session-id"])

    async def scenario():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack['token']}"}, timeout=httpx2.Timeout(30, read=120),
                                  event_hooks={"response": [record]})
        async with Client(streamable_http_client(stack["url"], http_client=http), mode="legacy") as client:
            assert client.server_info.name == "code-mcp"
            await client.set_logging_level("info")

            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == TOOLS
            assert all(tool.input_schema and tool.output_schema for tool in listed.tools)

            dry = await client.call_tool("create_deployment", {"service": "web", "image": "ghcr.io/acme/web:1.2.3", "environment": "staging", "dry_run": True})
            assert not dry.is_error and dry.structured_content["valid"] is True

            progress = []

            async def on_progress(value, total, message):
                progress.append((value, message))

            created = await client.call_tool(
                "create_deployment",
                {"service": "web", "image": "ghcr.io/acme/web:1.2.3", "environment": "staging", "replicas": 2, "wait": True},
                progress_callback=on_progress,
            )
            assert not created.is_error, created
            deployment = created.structured_content["deployment"]
            assert deployment["status"] == "succeeded"
            assert json.loads(created.content[0].text) == created.structured_content, "the same JSON as text"
            assert len(progress) >= 5, progress
            assert [value for value, _ in progress] == sorted(value for value, _ in progress), "progress only grows"
            assert any("rollout" in message for _, message in progress)

            fetched = await client.call_tool("get_deployment", {"id": deployment["id"]})
            assert fetched.structured_content["deployment"]["id"] == deployment["id"]
            assert fetched.structured_content["events"][-1]["step"] == "finish"

            listing = await client.call_tool("list_deployments", {"limit": 10})
            assert [d["id"] for d in listing.structured_content["items"]] == [deployment["id"]]

            manifests = await client.call_tool("get_manifests", {"id": deployment["id"]})
            assert "readOnlyRootFilesystem: true" in manifests.structured_content["kubernetes"]

            cancelled = await client.call_tool("cancel_deployment", {"id": deployment["id"]})
            assert cancelled.is_error and cancelled.structured_content["code"] == "deployment_finished"

            health = await client.call_tool("service_health", {})
            assert {name: health.structured_content[name]["status"] for name in ("api", "worker", "mcp")} == {"api": "ready", "worker": "ready", "mcp": "ready"}

            policy = await client.read_resource("code://policy")
            assert "production-requires-digest" in policy.contents[0].text
            templates = await client.list_resource_templates()
            assert [t.uri_template for t in templates.resource_templates] == ["code://deployments/{id}"]
            resource = await client.read_resource(f"code://deployments/{deployment['id']}")
            assert json.loads(resource.contents[0].text)["deployment"]["status"] == "succeeded"

            prompts = await client.list_prompts()
            assert {p.name for p in prompts.prompts} == {"plan_deployment", "investigate_failed_deployment"}
            plan = await client.get_prompt("plan_deployment", {"service": "web", "image": "nginx:1.25", "environment": "production"})
            assert "dry_run" in plan.messages[0].content.text
            investigation = await client.get_prompt("investigate_failed_deployment", {"id": deployment["id"]})
            assert deployment["id"] in investigation.messages[0].content.text
        await http.aclose()

    run(scenario)
    assert "DELETE" in methods, "the client ends its session with DELETE"
    session = sessions[-1]

    async def after():
        async with httpx2.AsyncClient() as http:
            response = await http.post(stack["url"], headers={
                "Authorization": f"Bearer {stack['token']}", "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25",
                "Accept": "application/json, text/event-stream", "Content-Type": "application/json",
            }, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
            assert response.status_code == 404, "the deleted session is gone"

    run(after)


def test_401_without_or_with_a_wrong_token_and_403_for_a_foreign_origin(stack):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                  "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    accept = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}

    async def raw():
        async with httpx2.AsyncClient() as http:
            missing = await http.post(stack["url"], headers=accept, json=initialize)
            assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
            wrong = await http.post(stack["url"], headers={**accept, "Authorization": "Bearer not-the-token-000000"}, json=initialize)
            assert wrong.status_code == 401
            foreign = await http.post(stack["url"], headers={**accept, "Authorization": f"Bearer {stack['token']}", "Origin": "http://evil.example"}, json=initialize)
            assert foreign.status_code == 403
            allowed = await http.post(stack["url"], headers={**accept, "Authorization": f"Bearer {stack['token']}", "Origin": "http://localhost:6274"}, json=initialize)
            assert allowed.status_code == 200

    run(raw)

    # The SDK client without a token cannot connect: the server answered its initialize with 401.
    statuses = []

    async def record(response):
        statuses.append(response.status_code)

    async def sdk_without_token():
        http = httpx2.AsyncClient(event_hooks={"response": [record]})
        async with Client(streamable_http_client(stack["url"], http_client=http), mode="legacy") as client:
            await client.list_tools()

    with pytest.raises(BaseException):
        run(sdk_without_token)
    assert statuses[:1] == [401], statuses
