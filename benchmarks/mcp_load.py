#!/usr/bin/env python3
"""tools/call throughput and latency of an MCP server (Streamable HTTP) under wrk, on loopback.

Sessions are opened first in Python (initialize, then notifications/initialized; the Mcp-Session-Id of
each is kept). One tools/call of each kind is checked by hand, so that wrk never counts errors as calls.
Then wrk runs a Lua script that POSTs `tools/call list_deployments {limit: 20}` with a unique JSON-RPC id
per call, sets Mcp-Session-Id (cycling through the sessions), `Accept: application/json,
text/event-stream`, and counts non-200 answers and answers carrying a JSON-RPC error or an isError
result; it prints them as `BENCH non200=... rpc_errors=...`.

Shapes (run.py runs all three against code-mcp and the FastMCP peer):
  one session, 16 concurrent calls   (`--sessions 1 --connections 16`)
  16 sessions, 16 concurrent calls   (`--sessions 16 --connections 16`)
  single-call latency                (`--sessions 1 --connections 1`)

    python3 benchmarks/mcp_load.py --url http://127.0.0.1:3000/mcp --token TOKEN [--sessions 1] [--connections 16]
"""
import argparse
import json
import os
import tempfile
import urllib.error
import urllib.request

import common

PROTOCOL_VERSION = "2025-11-25"
ACCEPT = "application/json, text/event-stream"

LUA = r"""
-- tools/call list_deployments {limit: LIMIT} with a unique id per call, cycling through the sessions.
local sessions = { SESSION_LIST }
local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

function init(args)
  counter = 0
  non200 = 0
  rpc_errors = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "ACCEPT"
  wrk.headers["Authorization"] = "Bearer TOKEN"
  wrk.headers["MCP-Protocol-Version"] = "PROTOCOL"
end

function request()
  counter = counter + 1
  local id = thread_id * 1000000000 + counter
  wrk.headers["Mcp-Session-Id"] = sessions[(counter + thread_id) % #sessions + 1]
  local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"list_deployments","arguments":{"limit":LIMIT}}}', id)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  elseif string.find(body, '"isError"%s*:%s*true') or string.find(body, '"error"%s*:%s*{') then
    rpc_errors = rpc_errors + 1
  end
end

function done(summary, latency, requests)
  local bad, failed = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non200")
    failed = failed + thread:get("rpc_errors")
  end
  io.write(string.format("BENCH non200=%d\n", bad))
  io.write(string.format("BENCH rpc_errors=%d\n", failed))
end
"""


def post(url, token, message, session=None, timeout=15):
    """One JSON-RPC message; returns (status, headers, the JSON-RPC answer or None). Reads an answer sent
    as JSON or as a text/event-stream (the last `data:` line that parses)."""
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", ACCEPT)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("MCP-Protocol-Version", PROTOCOL_VERSION)
    if session:
        request.add_header("Mcp-Session-Id", session)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, headers, raw = response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode(errors="replace")
    if not raw.strip():
        return status, headers, None
    if "text/event-stream" in (headers.get("Content-Type") or ""):
        answer = None
        for line in raw.splitlines():
            if line.startswith("data:") and line[5:].strip():
                try:
                    answer = json.loads(line[5:])
                except ValueError:
                    pass
        return status, headers, answer
    return status, headers, json.loads(raw)


def open_session(url, token):
    status, headers, answer = post(url, token, {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "bench", "version": "1.0"}}})
    session = headers.get("Mcp-Session-Id") if headers else None
    if status != 200 or not session or not isinstance(answer, dict) or "result" not in answer:
        raise RuntimeError(f"{url}: initialize answered {status}, session {session!r}: {answer!r}")
    status, _, _ = post(url, token, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session)
    if status not in (200, 202):
        raise RuntimeError(f"{url}: notifications/initialized answered {status}")
    return session


def close_session(url, token, session):
    request = urllib.request.Request(url, method="DELETE")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Mcp-Session-Id", session)
    request.add_header("MCP-Protocol-Version", PROTOCOL_VERSION)
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except OSError:
        pass


def call_tool(url, token, session, name, arguments, call_id=2):
    status, _, answer = post(url, token, {"jsonrpc": "2.0", "id": call_id, "method": "tools/call",
                                          "params": {"name": name, "arguments": arguments}}, session)
    if status != 200 or not isinstance(answer, dict) or "result" not in answer:
        raise RuntimeError(f"{url}: tools/call {name} answered {status}: {answer!r}"[:2000])
    result = answer["result"]
    if result.get("isError"):
        raise RuntimeError(f"{url}: tools/call {name} is an error result: {result!r}"[:2000])
    return result.get("structuredContent")


def check_by_hand(url, token, session, limit=20, deployment_id=None):
    """One list_deployments (and get_deployment) call checked: a page of `limit` deployments."""
    page = call_tool(url, token, session, "list_deployments", {"limit": limit})
    items = (page or {}).get("items")
    if not isinstance(items, list) or len(items) != limit:
        raise RuntimeError(f"{url}: list_deployments returned {len(items) if isinstance(items, list) else items!r} "
                           f"items, expected {limit}")
    if deployment_id:
        found = call_tool(url, token, session, "get_deployment", {"id": deployment_id}, call_id=3)
        if (found or {}).get("deployment", {}).get("id") != deployment_id or not found.get("events"):
            raise RuntimeError(f"{url}: get_deployment returned {found!r}"[:2000])
    return len(items)


def write_script(directory, token, sessions, limit=20):
    script = (LUA.replace("SESSION_LIST", ", ".join(json.dumps(s) for s in sessions))
              .replace("ACCEPT", ACCEPT).replace("TOKEN", token).replace("PROTOCOL", PROTOCOL_VERSION)
              .replace("LIMIT", str(limit)))
    path = os.path.join(directory, f"mcp-{len(sessions)}-{os.getpid()}.lua")
    with open(path, "w") as handle:
        handle.write(script)
    return path


def measure(url, token, sessions, connections, duration, threads=2, limit=20, warmup=0):
    """wrk against `url` over the given sessions; the result of common.run_wrk with `non200` and
    `rpc_errors` from the script."""
    with tempfile.TemporaryDirectory() as directory:
        script = write_script(directory, token, sessions, limit)
        if warmup:
            common.run_wrk(url, warmup, connections, threads=threads, script=script)
        result = common.run_wrk(url, duration, connections, threads=threads, script=script)
    result["non200"] = int(result["lua"].get("non200", 0))
    result["rpc_errors"] = int(result["lua"].get("rpc_errors", 0))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="the server's /mcp URL on 127.0.0.1")
    parser.add_argument("--token", required=True, help="bearer token for /mcp")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10)
    args = parser.parse_args()
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("--url must be on 127.0.0.1")
    sessions = [open_session(args.url, args.token) for _ in range(args.sessions)]
    try:
        check_by_hand(args.url, args.token, sessions[0])
        result = measure(args.url, args.token, sessions, args.connections, args.duration)
    finally:
        for session in sessions:
            close_session(args.url, args.token, session)
    print(f"{args.sessions} session(s), {args.connections} connection(s), {args.duration} s: {result['rps']:.1f} calls/s, "
          f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, non-200 {result['non200']}, "
          f"errors {result['rpc_errors']}, socket errors {result['socket_errors']}")


if __name__ == "__main__":
    main()
