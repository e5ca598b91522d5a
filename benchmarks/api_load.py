#!/usr/bin/env python3
"""Throughput, latency and memory of code-api under load from wrk, on loopback.

Starts code-api from --bin (and, with --baseline-bin, a second build) on a SQLite file (or, with
BENCH_POSTGRES_URL set to a server's admin URL, a new PostgreSQL database) seeded with
--seed deployments, then for each endpoint runs wrk (Debian's package) for --duration seconds with
--connections connections and prints requests/s, p50/p99 latency and the process's peak resident
memory side by side. Each build gets a fresh database; nothing leaves 127.0.0.1.

    python3 benchmarks/api_load.py --bin .build/release [--baseline-bin OLD/.build/release]
    BENCH_POSTGRES_URL=$(scripts/test-postgres.sh start) python3 benchmarks/api_load.py --bin .build/release
"""
import argparse
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ENDPOINTS = [
    ("GET /health/live", "/health/live", None),
    ("GET /v1/deployments?limit=20", "/v1/deployments?limit=20", "auth"),
    ("GET /v1/deployments/{id}", "/v1/deployments/{id}", "auth"),
    ("POST /v1/deployments", "/v1/deployments", "create"),
]

LUA_CREATE = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"service":"bench%%d","image":"ghcr.io/acme/web:1.0.%%d","environment":"staging","replicas":2}', counter %% 1000, counter)
  return wrk.format(nil, nil, nil, body)
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def call(url, key, body=None):
    request = urllib.request.Request(url, data=json.dumps(body).encode() if body else None, method="POST" if body else "GET")
    request.add_header("Authorization", f"Bearer {key}")
    if body:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def run_wrk(url, args, script=None, headers=()):
    command = ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{args.duration}s", "--latency"]
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    output = subprocess.run(command + [url], capture_output=True, text=True, timeout=args.duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))

    def percentile(name):
        match = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", output)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, percentile("50"), percentile("99"), int(errors.group(1)) if errors else 0


def fresh_database(directory):
    """A database of its own for one build: a SQLite file in `directory`, or a new database on the server
    of BENCH_POSTGRES_URL. Returns its URL and a function that drops it."""
    admin = os.environ.get("BENCH_POSTGRES_URL")
    if not admin:
        return f"sqlite://{directory}/code.db", lambda: None
    name = "bench_" + secrets.token_hex(6)
    subprocess.run(["psql", admin, "-q", "-c", f"CREATE DATABASE {name}"], check=True)
    url = urllib.parse.urlsplit(admin)._replace(path=f"/{name}").geturl()
    return url, lambda: subprocess.run(["psql", admin, "-q", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=False)


def measure(binary, args):
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        key = "code_" + secrets.token_urlsafe(32)
        port = free_port()
        database, drop_database = fresh_database(directory)
        env = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": "0", "LOG_LEVEL": "error",
               "DATABASE_URL": database, "CODE_ADMIN_KEY": key}
        process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(400):
                try:
                    urllib.request.urlopen(base + "/health/ready", timeout=1)
                    break
                except OSError:
                    time.sleep(0.025)
            ids = [call(base + "/v1/deployments", key, {"service": f"seed{i}", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging"})["id"] for i in range(args.seed)]
            script = os.path.join(directory, "create.lua")
            with open(script, "w") as handle:
                handle.write(LUA_CREATE % key)
            for label, path, kind in ENDPOINTS:
                url = base + path.replace("{id}", ids[0])
                headers = [f"Authorization: Bearer {key}"] if kind == "auth" else []
                results[label] = run_wrk(url, args, script=script if kind == "create" else None, headers=headers)
            results["peak RSS MiB"] = peak_rss_kib(process.pid) / 1024
        finally:
            process.terminate()
            process.wait(timeout=15)
            drop_database()
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--baseline-bin")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=200)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    builds = [("current", args.bin)] + ([("baseline", args.baseline_bin)] if args.baseline_bin else [])
    measured = {label: measure(os.path.join(folder, "code-api"), args) for label, folder in builds}
    print(f"code-api under wrk: {args.connections} connections, {args.duration} s per endpoint, {args.seed} seeded deployments, " + ("PostgreSQL" if os.environ.get("BENCH_POSTGRES_URL") else "SQLite"))
    print(f"{'endpoint':34} {'build':9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for label, _, _ in ENDPOINTS:
        for build, results in measured.items():
            rps, p50, p99, errors = results[label]
            print(f"{label:34} {build:9} {rps:9.0f} {p50:8.2f} {p99:8.2f} {errors:8d}")
    for build, results in measured.items():
        print(f"{'peak resident memory':34} {build:9} {results['peak RSS MiB']:8.1f} MiB")


if __name__ == "__main__":
    main()
