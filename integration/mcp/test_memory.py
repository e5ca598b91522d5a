"""MCP memory drill: one client of the official Python MCP SDK loops `list_deployments(limit=100)` for 60 s
against a real code-api seeded with 100 deployments; code-mcp's resident memory (VmRSS from
/proc/<pid>/status, sampled every second) must stay under RSS_BOUND_MIB.

Before the session's replay buffer was bounded, every answer (about 100 KB here) stayed in the session until
it ended, and the process grew without limit (figures in docs/reliability.md). The bounds (RSS_BOUND_MIB, and
GROWTH_BOUND_MIB from 10 s to the end) come from that measurement with headroom; the drill prints the figures.
"""
import json
import os
import secrets
import sys
import time
import urllib.request
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import new_key

DURATION_SECONDS = float(os.environ.get("MCP_MEMORY_DRILL_SECONDS", "60"))
# Measured on the debug build `make test` uses (2 cores): 55 MiB at start, 65 MiB from 10 s to 60 s (214 calls);
# before the fix 56 -> 68 -> 85 MiB at 0/10/60 s (207 calls), ~0.13 MiB a call, without limit.
RSS_BOUND_MIB = 96
GROWTH_BOUND_MIB = 8
SEEDED_DEPLOYMENTS = 100


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def seed(api_url: str, admin_key: str):
    for index in range(SEEDED_DEPLOYMENTS):
        body = json.dumps({"service": f"svc-{index}", "image": f"ghcr.io/acme/svc-{index}:1.0.{index}", "environment": "development",
                           "labels": {"team": "memory-drill", "index": str(index)}}).encode()
        request = urllib.request.Request(f"{api_url}/v1/deployments", data=body, method="POST", headers={
            "Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/status")
def test_one_client_looping_list_deployments_keeps_rss_bounded(services, workdir, drill_figures):
    admin, mcp_key = new_key(), new_key()
    token = "mcp-" + secrets.token_urlsafe(24)
    database = f"sqlite://{workdir}/code.db"
    api = services("code-api", {"DATABASE_URL": database, "CODE_ADMIN_KEY": admin, "CODE_MCP_API_KEY": mcp_key, "LOG_LEVEL": "warning"})
    seed(api.url, admin)
    (workdir / "mcp_token").write_text(token + "\n")
    mcp = services("code-mcp", {
        "CODE_API_URL": api.url, "CODE_WORKER_URL": "http://127.0.0.1:9", "MCP_API_KEY": mcp_key,
        "MCP_AUTH_TOKENS_FILE": str(workdir / "mcp_token"), "LOG_LEVEL": "warning",
    }, ready=False)
    # Readiness follows code-api's; no worker is needed to list deployments.
    mcp.wait_ready()
    pid = mcp.process.pid
    samples = [(0.0, rss_kib(pid))]
    calls = 0

    async def sample(started: float, stop: anyio.Event):
        while not stop.is_set():
            with anyio.move_on_after(1.0):
                await stop.wait()
            samples.append((time.monotonic() - started, rss_kib(pid)))

    async def scenario():
        nonlocal calls
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=60))
        async with Client(streamable_http_client(mcp.url + "/mcp", http_client=http), mode="legacy") as client:
            started = time.monotonic()
            stop = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(sample, started, stop)
                with anyio.fail_after(DURATION_SECONDS + 30):
                    while time.monotonic() - started < DURATION_SECONDS:
                        listing = await client.call_tool("list_deployments", {"limit": 100})
                        assert not listing.is_error, listing
                        assert len(listing.structured_content["items"]) == SEEDED_DEPLOYMENTS
                        calls += 1
                stop.set()
        await http.aclose()

    anyio.run(scenario)

    def at(seconds: float) -> int:
        return min(samples, key=lambda sample: abs(sample[0] - seconds))[1]

    peak = max(kib for _, kib in samples)
    # Shown under "drill figures" at the end of the run, even under `pytest -q`.
    drill_figures.append(
        f"MCP memory drill: {calls} list_deployments(limit=100) calls in {DURATION_SECONDS:.0f} s; code-mcp VmRSS "
        f"start {samples[0][1] / 1024:.1f} MiB, 10 s {at(10) / 1024:.1f} MiB, {DURATION_SECONDS:.0f} s {samples[-1][1] / 1024:.1f} MiB, "
        f"peak {peak / 1024:.1f} MiB (bounds: {RSS_BOUND_MIB} MiB, {GROWTH_BOUND_MIB} MiB growth after 10 s)"
    )
    assert calls >= 100, f"the drill made only {calls} calls"
    assert peak < RSS_BOUND_MIB * 1024, f"code-mcp grew to {peak / 1024:.1f} MiB: {samples}"
    growth = max(kib for seconds, kib in samples if seconds >= 10) - at(10)
    assert growth < GROWTH_BOUND_MIB * 1024, f"code-mcp grew {growth / 1024:.1f} MiB after warming up: {samples}"
