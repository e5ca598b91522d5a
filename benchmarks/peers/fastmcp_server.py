"""The Python peer of code-mcp for the benchmarks: the official MCP Python SDK's high-level server
(`MCPServer`, the SDK 2.x name of FastMCP) on Streamable HTTP at /mcp with `json_response=True` and
stateful sessions (Mcp-Session-Id), run by uvicorn (uvloop + httptools) in one process, as code-mcp is one
process holding its sessions in memory.

Its tools have code-mcp's names and argument schemas and call the same code-api over HTTP with an API
key (one shared httpx.AsyncClient, keep-alive), returning the same results as structured content:

- list_deployments(status?, service?, environment?, limit?, cursor?): GET /v1/deployments -> the page.
- get_deployment(id): GET /v1/deployments/{id}, then its events page by page (as code-mcp does) ->
  {"deployment": ..., "events": [...]}.

An answer of code-api other than 2xx becomes an error result (isError) carrying the problem, as in
code-mcp. Like code-mcp, /mcp requires `Authorization: Bearer <token>` (MCP_AUTH_TOKENS, compared in
constant time) and checks Host and Origin (the SDK's DNS-rebinding protection, on by default for
127.0.0.1).

    CODE_API_URL=http://127.0.0.1:8000 MCP_API_KEY=code_... MCP_AUTH_TOKENS=token \\
        python fastmcp_server.py --port 3100
"""
import argparse
import contextlib
import hmac
import json
import logging
import os
import re
from typing import Annotated, Any, Literal, Optional

import httpx
from pydantic import Field

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

API_URL = os.environ.get("CODE_API_URL", "http://127.0.0.1:8000")
API_KEY = os.environ.get("MCP_API_KEY", "")
AUTH_TOKENS = [token.strip() for token in os.environ.get("MCP_AUTH_TOKENS", "").split(",") if token.strip()]

_client: Optional[httpx.AsyncClient] = None


def client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(
            base_url=API_URL, timeout=10.0,
            headers={"Authorization": f"Bearer {API_KEY}", "User-Agent": "fastmcp-peer/1.0"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64))
    return _client


async def api_get(path: str, params: Optional[dict[str, Any]] = None) -> Any:
    try:
        response = await client().get(path, params={k: v for k, v in (params or {}).items() if v is not None})
    except httpx.HTTPError as error:
        raise ToolError(json.dumps({"code": "api_unavailable", "detail": f"code-api at {API_URL} did not answer: {error}"}))
    if response.status_code // 100 != 2:
        raise ToolError(response.text)
    return response.json()


# Warnings only, like code-mcp's LOG_LEVEL in the benchmark: the SDK logs each session at INFO, and httpx
# each request.
logging.getLogger("httpx").setLevel(logging.WARNING)
server = MCPServer("fastmcp-peer", version="1.0.0", log_level="WARNING")

Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
Environment = Literal["development", "staging", "production"]
ServiceName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
Limit = Annotated[int, Field(ge=1, le=100)]
Cursor = Annotated[str, Field(pattern=r"^[0-9a-z]{1,12}$")]
DEPLOYMENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@server.tool(name="list_deployments", title="List deployments",
             description="List deployments, newest first, optionally filtered by status, service and environment. "
                         "Pass next_cursor back as cursor for the next page.")
async def list_deployments(status: Optional[Status] = None, service: Optional[ServiceName] = None,
                           environment: Optional[Environment] = None, limit: Optional[Limit] = None,
                           cursor: Optional[Cursor] = None) -> dict[str, Any]:
    return await api_get("/v1/deployments", {"status": status, "service": service, "environment": environment,
                                             "limit": limit, "cursor": cursor})


@server.tool(name="get_deployment", title="Get a deployment",
             description="A deployment with its events: what the worker did, step by step.")
async def get_deployment(id: str) -> dict[str, Any]:
    if not DEPLOYMENT_ID.match(id):
        raise ToolError(f"get_deployment: id '{id}' is not a deployment id")
    deployment = await api_get(f"/v1/deployments/{id}")
    events: list[Any] = []
    after = None
    while True:
        page = await api_get(f"/v1/deployments/{id}/events", {"after": after, "limit": 100})
        events += page["items"]
        after = page.get("next_after")
        if after is None or len(events) >= 1000:
            break
    return {"deployment": deployment, "events": events}


class BearerTokens:
    """`Authorization: Bearer <token>` on every request, as code-mcp requires (MCP_AUTH_TOKENS)."""

    def __init__(self, app, tokens):
        self.app = app
        self.tokens = [token.encode() for token in tokens]

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            header = dict(scope["headers"]).get(b"authorization", b"")
            scheme, _, token = header.partition(b" ")
            if scheme.lower() != b"bearer" or not any(hmac.compare_digest(token.strip(), t) for t in self.tokens):
                body = b'{"error":"unauthorized"}'
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def build_app():
    starlette = server.streamable_http_app(streamable_http_path="/mcp", json_response=True, stateless_http=False)

    serve_sessions = starlette.router.lifespan_context

    @contextlib.asynccontextmanager
    async def close_client(app):
        async with serve_sessions(app):
            yield
        if _client is not None:
            await _client.aclose()

    starlette.router.lifespan_context = close_client
    return BearerTokens(starlette, AUTH_TOKENS) if AUTH_TOKENS else starlette


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3100)
    args = parser.parse_args()
    if not API_KEY:
        parser.error("MCP_API_KEY is required: the peer's key for code-api")
    if not AUTH_TOKENS:
        parser.error("MCP_AUTH_TOKENS is required: the bearer tokens MCP clients send")
    import uvicorn
    uvicorn.run(build_app(), host=args.host, port=args.port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False, lifespan="on")


if __name__ == "__main__":
    main()
