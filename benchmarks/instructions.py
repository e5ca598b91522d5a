#!/usr/bin/env python3
"""Instructions per request of code-api, counted by valgrind's callgrind: a figure that does not move with
how busy the machine is, for comparing two builds when wrk's throughput moves by more than the change.

Each build's code-api runs under callgrind on a SQLite file seeded with 25 deployments and answers the
endpoint's requests one at a time on one keep-alive connection: once `--small` times, once `--large` times,
each in a new process. What the two runs differ by, divided by the difference in requests, is what one
request costs; start-up, seeding and shutdown cancel out. One connection is the shape in which a request's
own work is not shared with others' (at 64 connections, one loop tick serves many requests).

valgrind 3.19 (Debian 12) cannot read the DWARF 5 of Swift 6 binaries, so each binary is measured from a
copy without its debug sections (`objcopy --strip-debug`; the symbol table stays, and with it the names
`--annotate` prints).

    python3 benchmarks/instructions.py --bin .build/sections/release [--baseline-bin OLD] [--endpoint list]
    python3 benchmarks/instructions.py --bin .build/sections/release --annotate 40   # the costliest functions

Needs valgrind and binutils (Debian's packages). About 2 minutes per build for GET by id.
"""
import argparse
import collections
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile

import common

ENDPOINTS = {"id": "/v1/deployments/{id}", "list": "/v1/deployments?limit=20", "live": "/health/live"}


def counted_run(binary, path_template, requests, keep=None):
    """Total instructions of one code-api process under callgrind that answered `requests` requests."""
    with tempfile.TemporaryDirectory() as directory:
        key = common.new_api_key()
        port = common.free_port()
        env = common.service_env(port, DATABASE_URL=f"sqlite://{directory}/code.db", CODE_ADMIN_KEY=key)
        # Stopped with SIGTERM (callgrind writes its counts when the service exits), SIGKILL after 180 s.
        with common.CallgrindServer("code-api", [binary], env, directory) as server:
            base = f"http://127.0.0.1:{port}"
            try:
                common.wait_http(base + "/health/ready", timeout=180, process=server.process)
                ids = common.seed_deployments(base, key, 25)
                path = path_template.replace("{id}", ids[0])
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    for _ in range(requests):
                        connection.request("GET", path, headers={"Authorization": f"Bearer {key}"})
                        answer = connection.getresponse()
                        answer.read()
                        if answer.status != 200:
                            raise RuntimeError(f"{path} answered {answer.status}")
                finally:
                    connection.close()
            except Exception:
                print(server.tail(), file=sys.stderr, flush=True)
                raise
            server.stop(timeout=180)
        total = 0
        profiles = server.profiles()
        for name in profiles:
            with open(name, errors="replace") as handle:
                totals = [int(line.split()[1]) for line in handle if line.startswith("totals:")]
            if not totals:
                raise RuntimeError(f"{name}: callgrind wrote no totals (the service did not exit by itself?)")
            total += totals[0]
        if total == 0:
            raise RuntimeError(f"callgrind counted nothing in {', '.join(profiles)}")
        if keep:
            shutil.copy(server.profile, keep)
        return total


def by_function(profile):
    """Self instructions by function from a callgrind output file."""
    output = subprocess.run(["callgrind_annotate", "--threshold=100", profile], capture_output=True, text=True,
                            timeout=300).stdout
    counts = collections.Counter()
    for line in output.splitlines():
        match = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*)$", line)
        if match and ":" in match.group(2):
            counts[match.group(2).split(" [")[0]] += int(match.group(1).replace(",", ""))
    return counts


def measure(label, binary, args):
    with tempfile.TemporaryDirectory() as directory:
        copy = common.without_debug_sections(binary, directory)
        small_profile = os.path.join(directory, "small") if args.annotate else None
        large_profile = os.path.join(directory, "large") if args.annotate else None
        small = counted_run(copy, ENDPOINTS[args.endpoint], args.small, small_profile)
        large = counted_run(copy, ENDPOINTS[args.endpoint], args.large, large_profile)
        per_request = (large - small) / (args.large - args.small)
        print(f"{label}: {per_request:,.0f} instructions per {args.endpoint} request", flush=True)
        if args.annotate:
            before, after = by_function(small_profile), by_function(large_profile)
            costs = {name: (after[name] - before.get(name, 0)) / (args.large - args.small) for name in after}
            for name, cost in sorted(costs.items(), key=lambda item: -item[1])[:args.annotate]:
                print(f"  {cost:>10,.0f}  {name[:160]}")
        return per_request


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True,
                        help="folder of the build to measure: its code-api (an executable, or a link to code-services)")
    parser.add_argument("--baseline-bin", help="folder of a build to compare against")
    parser.add_argument("--endpoint", choices=sorted(ENDPOINTS), default="id")
    parser.add_argument("--small", type=int, default=50, help="requests of the first run")
    parser.add_argument("--large", type=int, default=550, help="requests of the second run")
    parser.add_argument("--annotate", type=int, default=0, metavar="N",
                        help="also print the N functions with the most instructions of their own per request")
    args = parser.parse_args()
    if args.large <= args.small:
        parser.error("--large must be more than --small")
    for tool in ("valgrind", "objcopy", "callgrind_annotate"):
        if not shutil.which(tool):
            sys.exit(f"instructions: {tool} is missing (apt-get install valgrind binutils)")

    def binary(folder):
        path = os.path.join(folder, "code-api")
        if not os.path.exists(path):
            sys.exit(f"instructions: no code-api in {folder}")
        return path

    measured = measure("build", binary(args.bin), args)
    if args.baseline_bin:
        baseline = measure("baseline", binary(args.baseline_bin), args)
        print(f"build / baseline: {measured / baseline:.3f}")


if __name__ == "__main__":
    main()
