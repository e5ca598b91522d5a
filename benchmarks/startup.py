#!/usr/bin/env python3
"""Time from process start to the first 200 on /health/live, for each service executable.

Prints min / median / p90 / max in milliseconds over --runs starts and the resident memory after 2 s idle
(median of 3 starts, each from an evicted page cache), and with --baseline-bin the same
figures for a second build (e.g. the previous release) side by side. Measures the images' binary, code-services,
when the folder has it (each service through a link named after it), else each service's own executable.
Loopback only; every loop is bounded.

    python3 benchmarks/startup.py --bin .build/release [--baseline-bin /tmp/old/.build/release] [--runs 20]
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from common import anon_kib, free_port, rss_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every service of services.json.
with open(os.path.join(ROOT, "services.json")) as services_file:
    SERVICES = [service["name"] for service in json.load(services_file)["services"]]


def service_binary(folder, service, links):
    """What to start for `service` from a build folder: the images' binary, code-services, through a link
    named after the service in `links` (code-services runs the service its name says), when the folder
    has it; else the service's own executable. (A build on the host still loads the shared libcurl and its
    TLS libraries, which the images link statically.)"""
    shipped = os.path.join(folder, "code-services")
    if not os.access(shipped, os.X_OK):
        return os.path.join(folder, service)
    link = os.path.join(links, service)
    if not os.path.islink(link):
        os.symlink(os.path.abspath(shipped), link)
    return link


def service_environment(service, directory):
    """The least configuration with which every service starts (each reads only its own variables;
    mirrors Tests/CodeTestSupport/ServiceFixtures)."""
    return {
        "PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "LOG_LEVEL": "warning",
        "DATABASE_URL": f"sqlite://{directory}/code.db",
        "CODE_ADMIN_KEY": "code_" + "a" * 43,
        "CODE_API_URL": "http://127.0.0.1:9",
        "MCP_API_KEY": "code_" + "b" * 43,
        "MCP_AUTH_TOKENS": "benchmark-token-0123456789",
        "AUTH_TOKENS": "benchmark-token-0123456789",
    }


@contextlib.contextmanager
def live_service(binary, service, timeout=10.0):
    """Starts the service with the least configuration it starts with, waits for its first 200 on
    /health/live and yields (the process, the milliseconds from start to that answer); stops it after."""
    with tempfile.TemporaryDirectory() as directory:
        port, metrics_port = free_port(), free_port()
        env = service_environment(service, directory)
        env.update(PORT=str(port), METRICS_PORT=str(metrics_port))
        url = f"http://127.0.0.1:{port}/health/live"
        start = time.perf_counter()
        process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=0.5) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if time.perf_counter() - start > timeout:
                        raise RuntimeError(f"{service} did not answer {url} within {timeout}s")
                    time.sleep(0.001)
            yield process, (time.perf_counter() - start) * 1000
        finally:
            process.terminate()
            process.wait(timeout=15)


def time_to_live(binary, service, timeout=10.0):
    with live_service(binary, service, timeout) as (_, milliseconds):
        return milliseconds


def evict_from_page_cache(path):
    """Drops the file's pages from the page cache (those no running process maps).

    Why: how many pages a process maps around each page of the executable it touches depends on how the
    file sits in the page cache. A binary the linker or `cp` has just written is cached in other units
    than one read back from disk, and the same build measured 1-2 MiB apart that way. Evicted first, every
    build is read back the same way."""
    descriptor = os.open(os.path.realpath(path), os.O_RDONLY)
    try:
        os.fsync(descriptor)  # pages not yet written back (a binary just linked) would stay cached
        os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(descriptor)


def idle_rss_mib(binary, service, settle=2.0, timeout=10.0, starts=3):
    """Resident memory of the service after it answered /health/live and then sat idle for `settle`
    seconds, in MiB: (VmRSS, RssAnon), the median of `starts` starts, each with the executable evicted
    from the page cache first. VmRSS counts the pages of the executable it touched too; RssAnon only its
    own memory (closer to what a container's memory figure shows)."""
    samples = [idle_rss_once(binary, service, settle, timeout) for _ in range(starts)]
    return statistics.median(rss for rss, _ in samples), statistics.median(anon for _, anon in samples)


def idle_rss_once(binary, service, settle, timeout):
    evict_from_page_cache(binary)
    with live_service(binary, service, timeout) as (process, _):
        time.sleep(settle)
        return rss_kib(process.pid) / 1024, anon_kib(process.pid) / 1024


def measure_service(binary, service, runs, settle=2.0):
    """`runs` start-up times in ms, then the idle (VmRSS, RssAnon) in MiB. One start first, not counted: the
    memory starts of the service measured before left the binary partly out of the page cache."""
    time_to_live(binary, service)
    samples = [time_to_live(binary, service) for _ in range(runs)]
    rss, anon = idle_rss_mib(binary, service, settle=settle)
    return samples, rss, anon


def summary(samples):
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return f"min {ordered[0]:7.1f}  median {statistics.median(ordered):7.1f}  p90 {p90:7.1f}  max {ordered[-1]:7.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release", help="folder with the executables to measure")
    parser.add_argument("--baseline-bin", help="folder with the executables to compare against")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    builds = [("current", args.bin)] + ([("baseline", args.baseline_bin)] if args.baseline_bin else [])
    print(f"time from exec to first 200 on /health/live, ms, {args.runs} runs each")
    with tempfile.TemporaryDirectory(prefix="startup-links-") as links:
        for label, folder in builds:
            os.makedirs(os.path.join(links, label))
            started = service_binary(folder, SERVICES[0], os.path.join(links, label))
            print(f"{label}: {os.path.basename(os.path.realpath(started))} from {folder}")
        measure(builds, links, args.runs)


def measure(builds, links, runs):
    for service in SERVICES:
        for label, folder in builds:
            binary = service_binary(folder, service, os.path.join(links, label))
            if not os.access(binary, os.X_OK):
                print(f"{service:12} {label:9} missing: {binary}", file=sys.stderr)
                continue
            # Alternate builds run by run would be fairer on a busy machine; runs are short, so sequential is fine.
            samples, rss, anon = measure_service(binary, service, runs)
            print(f"{service:12} {label:9} {summary(samples)}  idle RSS {rss:5.1f} MiB (anonymous {anon:5.1f} MiB)")


if __name__ == "__main__":
    main()
