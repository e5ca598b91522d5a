#!/usr/bin/env python3
"""The side-by-side benchmark of issue 13, in one run: code-api, code-mcp and code-worker against peers on
this machine, printed as a table with ratios and targets, and written to benchmarks/results/latest.md,
latest.json and latest.png.

  api      wrk on GET /health/live, GET /v1/deployments/{id}, GET /v1/deployments?limit=20 and
           POST /v1/deployments: code-api (SQLite) against the FastAPI + uvicorn x4 peer (same work, SQLite
           WAL); /health/live also against a bare Hummingbird "hello" (same build flags) and nginx
           `return 200`; GET by id also with 1 connection (latency).
  mcp      tools/call list_deployments {limit: 20}: code-mcp against the FastMCP peer, both over the same
           code-api with the same data: one session with 16 concurrent calls, 16 sessions, one connection.
  worker   code-worker deployments/s on PostgreSQL (simulated driver, 0 ms steps) with 1, 2 and 4 processes.
  startup  start to first /health/live 200 (median of --startup-runs) and idle resident memory, per service, of
           code-services (the images' binary) when --bin has it, else of each service's own executable.

Every server is started and stopped here, on 127.0.0.1 only; every wait is bounded. Figures on a busy
machine are noisy: the ratios of one run are what count. `--quick` runs 3 s measurements for development.

    make bench                                   (builds what is needed, then runs this)
    python3 benchmarks/run.py [--quick] [--only api mcp worker startup] [--duration 10] [--connections 64]

Runs itself in .venv-bench (created from benchmarks/requirements.txt when missing or changed).
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(ROOT, ".venv-bench")
REQUIREMENTS = os.path.join(HERE, "requirements.txt")


def ensure_venv():
    """Re-executes this script in .venv-bench, creating or updating it from the pinned requirements."""
    python = os.path.join(VENV, "bin", "python")
    stamp = os.path.join(VENV, ".requirements.sha256")
    with open(REQUIREMENTS, "rb") as handle:
        wanted = hashlib.sha256(handle.read()).hexdigest()
    current = open(stamp).read().strip() if os.path.exists(stamp) else None
    if not os.access(python, os.X_OK) or current != wanted:
        print(f"installing the pinned benchmark tools into {VENV}", flush=True)
        if not os.access(python, os.X_OK):
            subprocess.run([sys.executable, "-m", "venv", VENV], check=True, timeout=600)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS],
                       check=True, timeout=1800)
        with open(stamp, "w") as handle:
            handle.write(wanted + "\n")
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV):
        os.execv(python, [python, os.path.abspath(__file__)] + sys.argv[1:])


if __name__ == "__main__":
    ensure_venv()

sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "peers"))

import api_load  # noqa: E402  (its create script)
import common  # noqa: E402
import mcp_load  # noqa: E402
import nginx  # noqa: E402
import startup  # noqa: E402
import worker_load  # noqa: E402

MCP_TOKEN = "bench-mcp-token-" + "0123456789abcdef"
PEER_WORKERS = 4

ENDPOINTS = [
    ("health", "GET /health/live"),
    ("get", "GET /v1/deployments/{id}"),
    ("list", "GET /v1/deployments?limit=20"),
    ("create", "POST /v1/deployments"),
]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def compact(result):
    """A wrk result without its raw output, for the JSON file."""
    return {key: value for key, value in result.items() if key not in ("output", "lua")}


def bad_answers(result):
    return result.get("non2xx", 0) + result.get("socket_errors", 0) + result.get("rpc_errors", 0)


# ---------------------------------------------------------------------------------------------------
# HTTP API: code-api against the FastAPI peer, hello Hummingbird and nginx


def start_fastapi_peer(workdir, admin_key, log_dir):
    port = common.free_port()
    env = {"PATH": os.path.join(VENV, "bin") + ":/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    server = common.Server("fastapi-peer", [sys.executable, os.path.join(HERE, "peers", "fastapi_app.py"),
                                            "--port", str(port), "--database", os.path.join(workdir, "peer.db"),
                                            "--admin-key", admin_key, "--workers", str(PEER_WORKERS)],
                           env, log_dir=log_dir)
    server.url = f"http://127.0.0.1:{port}"
    try:
        common.wait_http(server.url + "/health/live", timeout=90, process=server.process)
        # Every worker up: uvicorn's master, its resource tracker and PEER_WORKERS workers, each answering.
        deadline = time.monotonic() + 60
        while len(common.descendants(server.pid)) < PEER_WORKERS + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
    except Exception:
        print(server.tail())
        server.stop()
        raise
    return server


def check_http(name, base, key, deployment_id):
    """Each endpoint answered once by hand, so that wrk does not count errors as requests."""
    with_key = common.call(base + f"/v1/deployments/{deployment_id}", key)
    assert with_key["id"] == deployment_id, f"{name}: GET by id returned {with_key!r}"
    page = common.call(base + "/v1/deployments?limit=20", key)
    assert len(page["items"]) == 20 and page.get("next_cursor"), f"{name}: list returned {len(page['items'])} items"
    created = common.call(base + "/v1/deployments", key, {"service": "check", "image": "ghcr.io/acme/web:1.0.0",
                                                          "environment": "staging"})
    assert created["status"] == "queued", f"{name}: create returned {created!r}"


def bench_api(args, workdir, log_dir):
    results = {"servers": {}, "rss": {}}
    admin = common.new_api_key()
    code_api = peer = hello = ceiling = None
    try:
        log("api: starting code-api, the FastAPI peer, hello Hummingbird and nginx")
        code_api = common.start_code_api(os.path.join(args.bin, "code-api"), f"sqlite://{workdir}/code.db", admin,
                                         log_dir=log_dir)
        peer = start_fastapi_peer(workdir, admin, log_dir)
        if os.access(args.hello_bin, os.X_OK):
            port = common.free_port()
            hello = common.Server("hello-hummingbird", [args.hello_bin],
                                  {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(port)}, log_dir=log_dir)
            hello.url = f"http://127.0.0.1:{port}"
            common.wait_http(hello.url + "/health/live", timeout=30, process=hello.process)
        else:
            results["hello_error"] = f"{args.hello_bin} is not built (make bench builds it)"
        try:
            prefix = os.path.join(workdir, "nginx")
            ceiling = nginx.start_nginx(prefix, common.free_port(), log_dir=log_dir)
        except Exception as error:  # noqa: BLE001 - reported in the results
            results["nginx_error"] = str(error)

        log(f"api: seeding {args.seed} deployments into each")
        ids = {"code-api": common.seed_deployments(code_api.url, admin, args.seed, parallel=4),
               "fastapi": common.seed_deployments(peer.url, admin, args.seed, parallel=4)}
        for name, server in (("code-api", code_api), ("fastapi", peer)):
            check_http(name, server.url, admin, ids[name][0])
        script = os.path.join(workdir, "create.lua")
        with open(script, "w") as handle:
            handle.write(api_load.LUA_CREATE % admin)

        servers = [("nginx", ceiling), ("hello", hello), ("code-api", code_api), ("fastapi", peer)]
        plan = []
        for endpoint, _ in ENDPOINTS:
            for name, server in servers:
                if server is None or (endpoint != "health" and name in ("nginx", "hello")):
                    continue
                plan.append((endpoint, name, server, args.connections))
        for name, server in (("code-api", code_api), ("fastapi", peer)):
            plan.append(("get_c1", name, server, 1))

        for endpoint, name, server, connections in plan:
            path = {"health": "/health/live", "get": f"/v1/deployments/{ids.get(name, [''])[0]}",
                    "get_c1": f"/v1/deployments/{ids.get(name, [''])[0]}", "list": "/v1/deployments?limit=20",
                    "create": "/v1/deployments"}[endpoint]
            headers = [f"Authorization: Bearer {admin}"] if endpoint in ("get", "get_c1", "list") else []
            lua = script if endpoint == "create" else None
            url = server.url + path
            if args.warmup:
                common.run_wrk(url, args.warmup, connections, threads=args.threads, script=lua, headers=headers)
            result = common.run_wrk(url, args.duration, connections, threads=args.threads, script=lua, headers=headers)
            results["servers"].setdefault(name, {})[endpoint] = compact(result)
            log(f"api: {endpoint:7} {name:9} {result['rps']:9.0f} req/s  p50 {result['p50_ms']:7.2f} ms  "
                f"p99 {result['p99_ms']:7.2f} ms  errors {bad_answers(result)}")
        results["rss"] = {"code-api peak MiB": common.peak_rss_kib(code_api.pid) / 1024,
                          "fastapi (master + 4 workers) MiB": common.tree_rss_kib(peer.pid) / 1024}
    finally:
        for server in (code_api, peer, hello, ceiling):
            if server is not None:
                server.stop()
    return results


# ---------------------------------------------------------------------------------------------------
# MCP: code-mcp against the FastMCP peer over the same code-api


def wait_for_session(url, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return mcp_load.open_session(url, MCP_TOKEN)
        except Exception:  # noqa: BLE001 - retried until the deadline
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def bench_mcp(args, workdir, log_dir):
    results = {"servers": {}}
    admin = common.new_api_key()
    code_api = code_mcp = peer = None
    sessions = {}
    try:
        log("mcp: starting code-api, code-mcp and the FastMCP peer")
        code_api = common.start_code_api(os.path.join(args.bin, "code-api"), f"sqlite://{workdir}/mcp-api.db", admin,
                                         log_dir=log_dir)
        ids = common.seed_deployments(code_api.url, admin, args.seed, parallel=4)
        mcp_key = common.create_key(code_api.url, admin, "code-mcp", "operator")
        peer_key = common.create_key(code_api.url, admin, "fastmcp-peer", "operator")
        port = common.free_port()
        code_mcp = common.Server("code-mcp", [os.path.join(args.bin, "code-mcp")],
                                 common.service_env(port, CODE_API_URL=code_api.url, MCP_API_KEY=mcp_key,
                                                    MCP_AUTH_TOKENS=MCP_TOKEN), log_dir=log_dir)
        code_mcp.url = f"http://127.0.0.1:{port}/mcp"
        common.wait_http(f"http://127.0.0.1:{port}/health/live", timeout=30, process=code_mcp.process)
        port = common.free_port()
        peer = common.Server("fastmcp-peer", [sys.executable, os.path.join(HERE, "peers", "fastmcp_server.py"),
                                              "--port", str(port)],
                             {"PATH": os.path.join(VENV, "bin") + ":/usr/bin:/bin", "CODE_API_URL": code_api.url,
                              "MCP_API_KEY": peer_key, "MCP_AUTH_TOKENS": MCP_TOKEN, "PYTHONDONTWRITEBYTECODE": "1"},
                             log_dir=log_dir)
        peer.url = f"http://127.0.0.1:{port}/mcp"
        servers = [("code-mcp", code_mcp), ("fastmcp", peer)]
        for name, server in servers:
            sessions[name] = [wait_for_session(server.url)]
            sessions[name] += [mcp_load.open_session(server.url, MCP_TOKEN) for _ in range(args.mcp_sessions - 1)]
            count = mcp_load.check_by_hand(server.url, MCP_TOKEN, sessions[name][0], limit=20, deployment_id=ids[0])
            log(f"mcp: {name}: {len(sessions[name])} sessions open; list_deployments returned {count} items by hand")
        # "No tool waits on a timeout in the default configuration": service_health with code-mcp's default
        # worker URL (nothing of this run listens there).
        started = time.monotonic()
        try:
            mcp_load.call_tool(code_mcp.url, MCP_TOKEN, sessions["code-mcp"][0], "service_health", {}, call_id=4)
            results["service_health_ms"] = (time.monotonic() - started) * 1000
        except Exception as error:  # noqa: BLE001 - reported
            results["service_health_error"] = str(error)[:500]
        log(f"mcp: code-mcp service_health took {(time.monotonic() - started) * 1000:.0f} ms")
        shapes = [("one_session", 1, args.mcp_connections), ("sessions", args.mcp_sessions, args.mcp_connections),
                  ("single_call", 1, 1)]
        for shape, session_count, connections in shapes:
            for name, server in servers:
                result = mcp_load.measure(server.url, MCP_TOKEN, sessions[name][:session_count], connections,
                                          args.duration, threads=args.threads, warmup=args.warmup)
                results["servers"].setdefault(name, {})[shape] = compact(result)
                log(f"mcp: {shape:11} {name:8} {result['rps']:8.1f} calls/s  p50 {result['p50_ms']:8.2f} ms  "
                    f"p99 {result['p99_ms']:8.2f} ms  errors {bad_answers(result)}")
        results["rss"] = {"code-mcp peak MiB": common.peak_rss_kib(code_mcp.pid) / 1024,
                          "fastmcp MiB": common.tree_rss_kib(peer.pid) / 1024}
    finally:
        for name, server in (("code-mcp", code_mcp), ("fastmcp", peer)):
            if server is not None:
                for session in sessions.get(name, []):
                    mcp_load.close_session(server.url, MCP_TOKEN, session)
                server.stop()
        if code_api is not None:
            code_api.stop()
    return results


# ---------------------------------------------------------------------------------------------------
# Worker and start-up


def bench_worker(args, log_dir):
    results = {"runs": []}
    postgres = worker_load.Postgres()
    try:
        for count in args.workers:
            log(f"worker: {args.deployments} deployments, {count} worker process(es)")
            run = worker_load.run_workers(args.bin, postgres.admin_url, count, args.deployments, log_dir=log_dir)
            results["runs"].append(run)
            log(f"worker: {count}: {run['per_second']:.0f} deployments/s ({run['seconds']:.2f} s), "
                f"worker CPU {run['worker_cpu_ms_per_deployment']:.2f} ms per deployment, exactly once: {run['exactly_once']}")
    finally:
        postgres.stop()
    return results


def bench_startup(args):
    results = {"services": {}}
    links = tempfile.mkdtemp(prefix="startup-links-", dir=args.workdir)
    for service in startup.SERVICES:
        binary = startup.service_binary(args.bin, service, links)
        if not os.access(binary, os.X_OK):
            results["services"][service] = {"error": f"{binary} is missing"}
            continue
        samples, rss, anon = startup.measure_service(binary, service, args.startup_runs, settle=args.idle_settle)
        ordered = sorted(samples)
        results["services"][service] = {
            "median_ms": statistics.median(samples), "min_ms": ordered[0],
            "p90_ms": ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))],
            "max_ms": ordered[-1], "runs": len(samples), "idle_rss_mib": rss, "idle_anon_mib": anon,
            "binary": os.path.basename(os.path.realpath(binary))}
        log(f"startup: {service:12} median {statistics.median(samples):6.1f} ms, idle RSS {rss:5.1f} MiB "
            f"(anonymous {anon:5.1f} MiB)")
    return results


# ---------------------------------------------------------------------------------------------------
# Targets, tables, chart


def ratio(a, b):
    return a / b if a and b else None


def targets(results):
    """(name, measured, goal, comparison, unit) for every target of the issue that this run measured."""
    rows = []
    api = results.get("api", {}).get("servers", {})
    code, peer = api.get("code-api", {}), api.get("fastapi", {})
    for endpoint, label, goal in (("get", "GET by id", 4), ("list", "list 20", 4), ("create", "create", 2)):
        if endpoint in code and endpoint in peer:
            rows.append((f"{label}: code-api / FastAPI", ratio(code[endpoint]["rps"], peer[endpoint]["rps"]), goal,
                         ">=", "x"))
    if "get" in code:
        rows.append(("GET by id: code-api p99 at %d connections" % results["meta"]["connections"],
                     code["get"]["p99_ms"], 10, "<=", "ms"))
    if "health" in code and "health" in api.get("hello", {}):
        rows.append(("/health/live: code-api / hello Hummingbird", ratio(code["health"]["rps"],
                                                                         api["hello"]["health"]["rps"]), 0.9, ">=", "x"))
    mcp = results.get("mcp", {}).get("servers", {})
    ours, theirs = mcp.get("code-mcp", {}), mcp.get("fastmcp", {})
    for shape, label in (("one_session", "MCP one session, 16 concurrent calls"), ("sessions", "MCP 16 sessions")):
        if shape in ours and shape in theirs:
            rows.append((f"{label}: code-mcp / FastMCP", ratio(ours[shape]["rps"], theirs[shape]["rps"]), 5, ">=", "x"))
    if "service_health_ms" in results.get("mcp", {}):
        rows.append(("code-mcp service_health, default configuration (no timeout waited)",
                     results["mcp"]["service_health_ms"], 1000, "<=", "ms"))
    for run in results.get("worker", {}).get("runs", []):
        if run["workers"] == 4:
            rows.append(("worker, 4 processes, PostgreSQL", run["per_second"], 500, ">=", "dep/s"))
    for service, figures in results.get("startup", {}).get("services", {}).items():
        if "median_ms" in figures:
            rows.append((f"start-up {service} (median)", figures["median_ms"], 30, "<=", "ms"))
            rows.append((f"idle RSS {service}", figures["idle_rss_mib"], 20, "<=", "MiB"))
    out = []
    for name, measured, goal, comparison, unit in rows:
        passed = measured is not None and (measured >= goal if comparison == ">=" else measured <= goal)
        out.append({"target": name, "measured": measured, "goal": goal, "comparison": comparison, "unit": unit,
                    "result": "PASS" if passed else "MISS"})
    return out


def fmt(value, digits=0):
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def fmt_rps(result):
    if not result:
        return "-"
    text = f"{result['rps']:,.0f} (p50 {result['p50_ms']:.2f}, p99 {result['p99_ms']:.1f} ms)"
    errors = bad_answers(result)
    return text + (f", **{errors} errors**" if errors else "")


def cpu_per_deployment(run):
    """The worker's CPU per deployment, in results that have it (runs before 2026-12-03 do not)."""
    cpu = run.get("worker_cpu_ms_per_deployment")
    return "-" if cpu is None else f"{cpu:.2f} ms"


def markdown(results):
    meta = results["meta"]
    lines = [f"Run of {meta['date']} on {meta['machine']} at commit {meta['commit']}"
             f"{' (with uncommitted changes)' if meta.get('dirty') else ''}; wrk -t{meta['threads']} "
             f"-c{meta['connections']} -d{meta['duration']}s on loopback (MCP: {meta['mcp_connections']} connections); "
             f"load average at start {meta['loadavg']}.", ""]
    api = results.get("api", {})
    if "servers" in api:
        servers = api["servers"]
        lines += ["| endpoint (req/s, latency) | nginx `return 200` | hello Hummingbird | FastAPI + uvicorn x4 | "
                  "code-api | code-api / FastAPI |", "|---|---|---|---|---|---|"]
        for endpoint, label in ENDPOINTS + [("get_c1", "GET /v1/deployments/{id}, 1 connection")]:
            code, peer = servers.get("code-api", {}).get(endpoint), servers.get("fastapi", {}).get(endpoint)
            lines.append(f"| {label} | {fmt_rps(servers.get('nginx', {}).get(endpoint))} | "
                         f"{fmt_rps(servers.get('hello', {}).get(endpoint))} | {fmt_rps(peer)} | {fmt_rps(code)} | "
                         f"{fmt(ratio(code and code['rps'], peer and peer['rps']), 2)}x |")
        health = servers.get("code-api", {}).get("health")
        for name in ("hello", "nginx"):
            other = servers.get(name, {}).get("health")
            if health and other:
                lines.append(f"\ncode-api / {name} on /health/live: {ratio(health['rps'], other['rps']):.2f}x")
        for name in ("hello_error", "nginx_error"):
            if name in api:
                lines.append(f"\n{name.split('_')[0]} not measured: {api[name]}")
        lines.append("")
    elif "error" in api:
        lines += [f"API comparison not run: {api['error']}", ""]
    mcp = results.get("mcp", {})
    if "servers" in mcp:
        ours, theirs = mcp["servers"].get("code-mcp", {}), mcp["servers"].get("fastmcp", {})
        lines += ["| tools/call list_deployments {limit: 20} (calls/s, latency) | FastMCP (Python SDK) | code-mcp | "
                  "code-mcp / FastMCP |", "|---|---|---|---|"]
        for shape, label in (("one_session", f"one session, {meta['mcp_connections']} concurrent calls"),
                             ("sessions", f"{meta['mcp_sessions']} sessions, {meta['mcp_connections']} concurrent calls"),
                             ("single_call", "one call at a time (1 connection)")):
            a, b = ours.get(shape), theirs.get(shape)
            lines.append(f"| {label} | {fmt_rps(b)} | {fmt_rps(a)} | {fmt(ratio(a and a['rps'], b and b['rps']), 2)}x |")
        if "service_health_ms" in mcp:
            lines.append(f"\ncode-mcp `service_health` with the default worker URL: {mcp['service_health_ms']:.0f} ms")
        lines.append("")
    elif "error" in mcp:
        lines += [f"MCP comparison not run: {mcp['error']}", ""]
    worker = results.get("worker", {})
    if worker.get("runs"):
        lines += ["| code-worker on PostgreSQL, simulated driver at 0 ms | deployments | seconds (first claim to last "
                  "succeeded) | deployments/s | worker CPU per deployment | each succeeded exactly once |", "|---|---|---|---|---|---|"]
        for run in worker["runs"]:
            lines.append(f"| {run['workers']} process(es) | {run['deployments']} | {run['seconds']:.2f} | "
                         f"{run['per_second']:,.0f} | {cpu_per_deployment(run)} | "
                         f"{'yes' if run['exactly_once'] else 'NO: ' + json.dumps(run['checks'])} |")
        lines.append("")
    elif "error" in worker:
        lines += [f"Worker throughput not run: {worker['error']}", ""]
    services = results.get("startup", {}).get("services", {})
    if services:
        lines += ["| service | start to first /health/live 200, median (p90) | idle resident memory (VmRSS) | of which "
                  "anonymous (RssAnon) |", "|---|---|---|---|"]
        for service, figures in services.items():
            if "median_ms" in figures:
                lines.append(f"| {service} ({figures.get('binary', service)}) | {figures['median_ms']:.1f} ms ({figures['p90_ms']:.1f} ms), "
                             f"{figures['runs']} runs | {figures['idle_rss_mib']:.1f} MiB | "
                             f"{figures.get('idle_anon_mib', 0):.1f} MiB |")
            else:
                lines.append(f"| {service} | not measured: {figures.get('error')} | | |")
        lines.append("")
    elif "error" in results.get("startup", {}):
        lines += [f"Start-up not run: {results['startup']['error']}", ""]
    rows = results.get("targets", [])
    if rows:
        lines += ["| target (issue 13) | measured | goal | |", "|---|---|---|---|"]
        for row in rows:
            digits = 2 if row["unit"] == "x" else 1
            unit = "x" if row["unit"] == "x" else f" {row['unit']}"
            lines.append(f"| {row['target']} | {fmt(row['measured'], digits)}{unit} | {row['comparison']} "
                         f"{row['goal']}{unit} | {row['result']} |")
        lines.append("")
    return "\n".join(lines)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, axes = plt.subplots(1, 3, figsize=(18, 6))
    rows = [row for row in results.get("targets", []) if row["unit"] == "x" and row["measured"]]
    ax = axes[0]
    if rows:
        names = [row["target"].replace(": ", ":\n") for row in rows]
        values = [row["measured"] for row in rows]
        colors = ["#2e7d32" if row["result"] == "PASS" else "#c62828" for row in rows]
        positions = range(len(rows))
        ax.barh(positions, values, color=colors)
        for position, row in zip(positions, rows):
            ax.plot([row["goal"], row["goal"]], [position - 0.4, position + 0.4], color="black", linewidth=2)
            ax.text(row["measured"], position, f" {row['measured']:.2f}x", va="center", fontsize=8)
        ax.set_yticks(list(positions))
        ax.set_yticklabels(names, fontsize=8)
        ax.set_xscale("log")
        low = min(values + [row["goal"] for row in rows] + [1]) / 1.5
        high = max(values + [row["goal"] for row in rows]) * 2
        ax.set_xlim(low, high)
        ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32) if low <= t <= high]
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}x"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.axvline(1, color="grey", linewidth=0.8, linestyle=":")
        ax.invert_yaxis()
    ax.set_title("ratios (bars) against the issue's targets (black marks)")

    ax = axes[1]
    servers = results.get("api", {}).get("servers", {})
    series = [("nginx", "nginx"), ("hello", "hello Hummingbird"), ("fastapi", "FastAPI x4"), ("code-api", "code-api")]
    labels = [label.replace(" /v1/deployments", "").replace("?limit=20", " ?limit=20") for _, label in ENDPOINTS]
    width = 0.2
    for index, (name, label) in enumerate(series):
        values = [servers.get(name, {}).get(endpoint, {}).get("rps", 0) for endpoint, _ in ENDPOINTS]
        if any(values):
            ax.bar([i + (index - 1.5) * width for i in range(len(ENDPOINTS))], values, width, label=label)
    ax.set_xticks(range(len(ENDPOINTS)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log)")
    ax.set_title(f"HTTP API, wrk -c{results['meta']['connections']}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)

    ax = axes[2]
    mcp = results.get("mcp", {}).get("servers", {})
    shapes = [("one_session", "1 session,\n16 concurrent"), ("sessions", "16 sessions"), ("single_call", "1 connection")]
    for index, (name, label) in enumerate((("fastmcp", "FastMCP (Python SDK)"), ("code-mcp", "code-mcp"))):
        values = [mcp.get(name, {}).get(shape, {}).get("rps", 0) for shape, _ in shapes]
        if any(values):
            ax.bar([i + (index - 0.5) * 0.35 for i in range(len(shapes))], values, 0.35, label=label)
    worker_runs = results.get("worker", {}).get("runs", [])
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels([label for _, label in shapes], fontsize=8)
    ax.set_ylabel("tools/call per second")
    title = "MCP tools/call list_deployments(20)"
    if worker_runs:
        title += "\nworker dep/s: " + ", ".join(f"{run['workers']}: {run['per_second']:.0f}" for run in worker_runs)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    figure.suptitle(f"issue 13 benchmark, {results['meta']['date']}, commit {results['meta']['commit']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def git(*arguments):
    try:
        return subprocess.run(["git", "-C", ROOT] + list(arguments), capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Where `make bench` builds them (the Makefile's RELEASE_FLAGS: a build folder of their own).
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build", "sections", "release"),
                        help="folder of the release executables")
    parser.add_argument("--hello-bin", default=os.path.join(HERE, "hello-hummingbird", ".build", "sections", "release",
                                                            "hello-hummingbird"))
    parser.add_argument("--quick", action="store_true", help="3 s measurements, fewer runs: for development")
    parser.add_argument("--only", nargs="+", choices=["api", "mcp", "worker", "startup"],
                        default=["api", "mcp", "worker", "startup"])
    parser.add_argument("--duration", type=int, help="seconds per wrk measurement (10; --quick 3)")
    parser.add_argument("--warmup", type=int, help="seconds of wrk before each measurement (1)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections for the HTTP API")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--mcp-connections", type=int, default=16)
    parser.add_argument("--mcp-sessions", type=int, default=16)
    parser.add_argument("--seed", type=int, default=200, help="deployments seeded for the API and MCP runs")
    parser.add_argument("--deployments", type=int, help="deployments per worker run (2000; --quick 300)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--startup-runs", type=int, help="starts per service (20; --quick 5)")
    parser.add_argument("--idle-settle", type=float, default=2.0, help="seconds idle before reading the RSS")
    parser.add_argument("--results", default=os.path.join(HERE, "results"), help="folder for latest.md/json/png")
    parser.add_argument("--replot", action="store_true",
                        help="rewrite latest.md and latest.png from the results folder's latest.json; measure nothing")
    args = parser.parse_args()
    if args.replot:
        with open(os.path.join(args.results, "latest.json")) as handle:
            results = json.load(handle)
        results["targets"] = targets(results)
        with open(os.path.join(args.results, "latest.md"), "w") as handle:
            handle.write("# Benchmark results (benchmarks/run.py)\n\n" + markdown(results) + "\n")
        chart(results, os.path.join(args.results, "latest.png"))
        return
    args.duration = args.duration or (3 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else 1
    args.deployments = args.deployments or (300 if args.quick else 2000)
    args.startup_runs = args.startup_runs or (5 if args.quick else 20)
    args.bin = os.path.abspath(args.bin)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")

    results = {"meta": {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "Sources",
                                                                          "Package.swift")),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()}",
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()), "quick": args.quick, "duration": args.duration,
        "warmup": args.warmup, "connections": args.connections, "threads": args.threads,
        "mcp_connections": args.mcp_connections, "mcp_sessions": args.mcp_sessions, "seed": args.seed,
        "bin": args.bin, "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0],
        "requirements": [line.strip() for line in open(REQUIREMENTS) if "==" in line and not line.startswith("#")],
    }}
    log(f"benchmark: {results['meta']['machine']}, commit {results['meta']['commit']}, "
        f"load {results['meta']['loadavg']}, {'quick' if args.quick else 'full'} run")
    failed = []
    workdir = args.workdir = tempfile.mkdtemp(prefix="code-bench-")
    os.chmod(workdir, 0o755)  # nginx runs as nobody from a prefix inside it
    log_dir = os.path.join(workdir, "logs")
    os.makedirs(log_dir)
    sections = {"api": lambda: bench_api(args, workdir, log_dir), "mcp": lambda: bench_mcp(args, workdir, log_dir),
                "worker": lambda: bench_worker(args, log_dir), "startup": lambda: bench_startup(args)}
    try:
        for section in ["api", "mcp", "worker", "startup"]:
            if section not in args.only:
                continue
            try:
                results[section] = sections[section]()
            except Exception as error:  # noqa: BLE001 - a failed section is reported, the others still run
                traceback.print_exc()
                results[section] = {"error": f"{type(error).__name__}: {error}"}
                failed.append(section)
    finally:
        results["targets"] = targets(results)
        os.makedirs(args.results, exist_ok=True)
        table = markdown(results)
        with open(os.path.join(args.results, "latest.md"), "w") as handle:
            handle.write("# Benchmark results (benchmarks/run.py)\n\n" + table + "\n")
        with open(os.path.join(args.results, "latest.json"), "w") as handle:
            json.dump(results, handle, indent=2, sort_keys=True)
            handle.write("\n")
        try:
            chart(results, os.path.join(args.results, "latest.png"))
        except Exception:  # noqa: BLE001 - the tables are written regardless
            traceback.print_exc()
            failed.append("chart")
        print("\n" + table)
        print(f"written: {os.path.relpath(args.results, ROOT)}/latest.md, latest.json, latest.png; logs in {log_dir}")
    if failed:
        print(f"sections that failed: {', '.join(failed)} (see above)", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
