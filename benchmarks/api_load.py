#!/usr/bin/env python3
"""Throughput, latency and memory of code-api under load from wrk, on loopback.

Starts code-api from --bin (and, with --baseline-bin, a second build) on a SQLite file (or, with
BENCH_POSTGRES_URL set to a server's admin URL, a new PostgreSQL database) seeded with
--seed deployments, then for each endpoint runs wrk (Debian's package) for --duration seconds with
--connections connections and prints requests/s, p50/p99 latency and the process's peak resident
memory side by side. Each build gets a fresh database; nothing leaves 127.0.0.1.

    python3 benchmarks/api_load.py --bin .build/release [--baseline-bin OLD/.build/release]
    BENCH_POSTGRES_URL=$(scripts/test-postgres.sh start) python3 benchmarks/api_load.py --bin .build/release
    python3 benchmarks/api_load.py --bin .build/release --tracing

--tracing measures one build with tracing off and on (every request sampled and exported over OTLP/HTTP
to a receiver in this process that accepts and discards the batches: what tracing costs the service),
--rounds times each, alternating, and prints the medians.
"""
import argparse
import http.server
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import common
from common import call, fresh_database, free_port, peak_rss_kib

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


def run_wrk(url, args, script=None, headers=()):
    result = common.run_wrk(url, args.duration, args.connections, script=script, headers=headers)
    return result["rps"], result["p50_ms"], result["p99_ms"], result["non2xx"]


class DiscardingOTLPReceiver:
    """Answers every OTLP/HTTP export with an empty success, counting bytes: a collector that costs the
    service nothing but the export itself."""

    def __init__(self):
        self.exports = 0
        self.bytes = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                with receiver.lock:
                    receiver.exports += 1
                    receiver.bytes += length
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def measure(binary, args, extra_env=None):
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        key = "code_" + secrets.token_urlsafe(32)
        port = free_port()
        database, drop_database = fresh_database(directory)
        env = {"PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(port), "METRICS_PORT": "0", "LOG_LEVEL": "error",
               "DATABASE_URL": database, "CODE_ADMIN_KEY": key, **(extra_env or {})}
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


def median_results(rounds):
    """Per endpoint, the round with the median throughput (its latencies with it); the peak memory's median."""
    merged = {}
    for label, _, _ in ENDPOINTS:
        ordered = sorted((results[label] for results in rounds), key=lambda result: result[0])
        merged[label] = ordered[len(ordered) // 2]
    merged["peak RSS MiB"] = sorted(results["peak RSS MiB"] for results in rounds)[len(rounds) // 2]
    return merged


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--baseline-bin")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seed", type=int, default=200)
    parser.add_argument("--tracing", action="store_true", help="the build with tracing off, then on (100 %% sampled)")
    parser.add_argument("--rounds", type=int, default=3, help="with --tracing: alternating rounds; medians are printed")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    if args.tracing and args.baseline_bin:
        sys.exit("--tracing measures one build (--bin) with tracing off and on; drop --baseline-bin")
    if args.tracing:
        receiver = DiscardingOTLPReceiver()
        binary = os.path.join(args.bin, "code-api")
        rounds = {"off": [], "on": []}
        for _ in range(args.rounds):
            rounds["off"].append(measure(binary, args))
            rounds["on"].append(measure(binary, args, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}))
        measured = {mode: median_results(results) for mode, results in rounds.items()}
        print(f"tracing on: {receiver.exports} OTLP exports, {receiver.bytes / 1e6:.1f} MB received and discarded; "
              f"medians of {args.rounds} alternating rounds")
    else:
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
    if len(measured) == 2:
        (first, a), (second, b) = measured.items()
        for label, _, _ in ENDPOINTS:
            print(f"{label:34} {second} / {first}: {b[label][0] / a[label][0]:.2f}x throughput")


if __name__ == "__main__":
    main()
