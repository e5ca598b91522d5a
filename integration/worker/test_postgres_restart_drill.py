"""Drill (issue 12): PostgreSQL restarts under load. While it is down, code-api answers 503 problem+json
(`database_unavailable`) within 2 s and reports not ready; once it is back, code-api and code-worker
recover within 5 s without a restart, the worker's LISTEN works again, and no deployment is lost or
finished twice. A private server (scripts/test-postgres.sh with a port and folder of its own), so that
stopping it disturbs no other test."""
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import ROOT
from conftest import free_port
from conftest import new_key
from containers.workload import API
from containers.workload import TERMINAL
from containers.workload import request

DOWN_SECONDS = 4
# The worker polls rarely: a deployment picked up quickly after the restart was woken by LISTEN/NOTIFY.
POLL_MS = 10_000


def postgres(command, port, directory):
    env = {**os.environ, "CODE_TEST_POSTGRES_PORT": str(port), "CODE_TEST_POSTGRES_DIR": directory}
    result = subprocess.run([str(ROOT / "scripts/test-postgres.sh"), command], env=env, check=True, capture_output=True, text=True, timeout=90)
    return result.stdout.strip()


@pytest.fixture
def private_postgres():
    if not shutil.which("psql"):
        pytest.skip("no PostgreSQL client on this machine")
    port = free_port()
    directory = tempfile.mkdtemp(prefix="code-pg-restart-")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    admin = postgres("start", port, directory)
    subprocess.run(["psql", admin, "-q", "-c", "CREATE DATABASE drill"], check=True, capture_output=True, timeout=30)
    url = admin.replace("/postgres?", "/drill?")
    try:
        yield url, lambda: postgres("stop", port, directory), lambda: postgres("start", port, directory)
    finally:
        postgres("stop", port, directory)
        shutil.rmtree(directory, ignore_errors=True)


class Load(threading.Thread):
    """Creates a deployment every 50 ms and records (time, status, seconds, code, id) of every answer."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.results = []
        self.stopping = threading.Event()

    def run(self):
        index = 0
        while not self.stopping.is_set():
            index += 1
            began = time.monotonic()
            try:
                status, body, headers = request(
                    "POST", self.client.base_url + "/v1/deployments", key=self.client.key,
                    body={"service": f"load-{index}", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging"}, timeout=10)
                code = body.get("code") if isinstance(body, dict) else None
                ident = body.get("id") if isinstance(body, dict) and status == 201 else None
                self.results.append((began, status, time.monotonic() - began, code, ident, headers.get("Content-Type", "")))
            except OSError as error:
                self.results.append((began, None, time.monotonic() - began, str(error), None, ""))
            time.sleep(0.05)


def test_postgres_restart_under_load(services, private_postgres, drill_figures):
    url, stop, start = private_postgres
    admin = new_key()
    api = services("code-api", {"DATABASE_URL": url, "CODE_ADMIN_KEY": admin, "LOG_LEVEL": "error"})
    worker = services("code-worker", {
        "DATABASE_URL": url, "WORKER_ID": "restart", "CODE_SIMULATED_STEP_MS": "5", "CODE_POLL_INTERVAL_MS": str(POLL_MS),
        "CODE_LEASE_SECONDS": "3", "LOG_LEVEL": "error",
    })
    client = API(api.url, admin)
    load = Load(client)
    load.start()
    try:
        time.sleep(1.5)
        # A key code-api has just found (and keeps for CODE_KEY_CACHE_SECONDS, 1 s): the first request with it
        # once the server is down gets as far as its change and the audit row, unless stopping took a second.
        probe_key = client.call("POST", "/v1/keys", {"name": "probe", "role": "operator"}, wanted=201)[1]["secret"]
        found_at = time.monotonic()
        client.call("GET", "/v1/deployments?limit=1", key=probe_key, wanted=200)
        stop()
        down_at = time.monotonic()
        status, body, _ = request(
            "POST", api.url + "/v1/deployments", key=probe_key,
            body={"service": "probe-down", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging"}, timeout=10)
        cached_key_answer = (status, body.get("code") if isinstance(body, dict) else None, time.monotonic() - down_at)
        # Whether the key was still kept when the POST came (stopping the server can take longer than that).
        probe_key_kept = down_at - found_at < 0.9
        readiness = []
        while time.monotonic() - down_at < DOWN_SECONDS:
            began = time.monotonic()
            status, _, _ = request("GET", api.url + "/health/ready", timeout=5)
            readiness.append((status, time.monotonic() - began))
            time.sleep(0.3)
        # pg_ctl --wait returns some time after the server accepts connections again: what "down" means
        # ends when the restart begins.
        restarting = time.monotonic()
        start()
        up_at = time.monotonic()
        # Recovery: the first deployment created after the restart that a worker finishes.
        recovered_api = recovered_worker = None
        probe = None
        while time.monotonic() - up_at < 15:
            status, body, _ = request("GET", api.url + "/health/ready", timeout=5)
            if status == 200 and recovered_api is None:
                recovered_api = time.monotonic() - up_at
            if recovered_api is not None and probe is None:
                probe_status, probe_body, _ = request(
                    "POST", api.url + "/v1/deployments", key=admin,
                    body={"service": "probe", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging"}, timeout=5)
                if probe_status == 201:
                    probe = probe_body["id"]
            if probe is not None and client.get(probe)["status"] in TERMINAL:
                recovered_worker = time.monotonic() - up_at
                break
            time.sleep(0.1)
        time.sleep(1)
    finally:
        load.stopping.set()
        load.join(timeout=15)

    down = [r for r in load.results if r[0] >= down_at + 0.5 and r[0] + r[2] <= restarting]
    assert down, "no request while the database was down"
    assert all(r[1] == 503 and r[3] == "database_unavailable" and "problem+json" in r[5] for r in down), down[:5]
    # One deadline, not two (the change's, then the audit row's): the row went to the error log instead.
    assert cached_key_answer[:2] == (503, "database_unavailable") and cached_key_answer[2] < 2.0, cached_key_answer
    if probe_key_kept:
        assert "could not write the audit log: the database is unavailable" in api.log_path.read_text(errors="replace")
    slowest_down = max(r[2] for r in down)
    assert slowest_down < 2.0, f"a request took {slowest_down:.2f} s while the database was down"
    assert all(status == 503 for status, _ in readiness[1:]), readiness
    assert recovered_api is not None and recovered_api < 5, f"code-api ready again after {recovered_api}"
    assert recovered_worker is not None and recovered_worker < 5, f"the worker finished a new deployment after {recovered_worker}"

    # Nothing lost, nothing finished twice: every accepted deployment ends once.
    accepted = [r[4] for r in load.results if r[1] == 201] + [probe]
    finished = [client.wait(ident, timeout=60) for ident in accepted]
    assert all(d["status"] == "succeeded" for d in finished), [d for d in finished if d["status"] != "succeeded"][:3]
    for ident in accepted:
        finishes = [e for e in client.events(ident) if e["step"] == "finish"]
        assert len(finishes) == 1, (ident, finishes)
    statuses = sorted({r[1] for r in load.results}, key=str)
    drill_figures.append(
        f"postgres restart drill: down {DOWN_SECONDS} s, {len(down)} requests while down, all 503 database_unavailable, "
        f"slowest {slowest_down:.2f} s (a key just found: {cached_key_answer[2]:.2f} s"
        f"{'' if probe_key_kept else ', no longer kept when it came'}); readiness 503 in {max(t for _, t in readiness):.2f} s at most; "
        f"api ready {recovered_api:.2f} s and a new deployment finished {recovered_worker:.2f} s after the restart; "
        f"{len(accepted)} deployments, each finished once; statuses seen {statuses}"
    )
    assert worker.process.poll() is None and api.process.poll() is None, "neither process was restarted"
