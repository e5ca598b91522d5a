#!/usr/bin/env python3
"""Worker throughput: deployments per second from the first claim to the last `succeeded`, with the
simulated rollout driver at 0 ms steps (CODE_ROLLOUT_DRIVER=simulated CODE_SIMULATED_STEP_MS=0), on
PostgreSQL, for each number of worker processes given.

For each count: a new database on the server, code-api on it to enqueue --deployments deployments through
POST /v1/deployments (8 clients in parallel; no health_url, so `verify` is skipped as for any deployment
without one), code-api stopped, then the worker processes started together (WORKER_CONCURRENCY left at its
default). The figures come from the database: started_at of the first claim to finished_at of the last
deployment. Then each deployment is checked: succeeded, attempt 1, one claim event, one finish event, one
worker id.

    python3 benchmarks/worker_load.py --bin .build/release [--workers 1 2 4] [--deployments 2000]
    BENCH_POSTGRES_URL=postgres://... python3 benchmarks/worker_load.py ...   (an existing server)

Without BENCH_POSTGRES_URL it starts a private server with scripts/test-postgres.sh on port 25442 (its
own folder, fsync off) and stops it at the end if it started it.
"""
import argparse
import os
import select
import subprocess
import tempfile
import time

import common

POSTGRES_PORT = 25442  # below the ephemeral range, as scripts/test-postgres.sh says


class Postgres:
    """A PostgreSQL server for the benchmark: BENCH_POSTGRES_URL, or scripts/test-postgres.sh on a port of
    its own (stopped on `stop` if this started it)."""

    def __init__(self, port=POSTGRES_PORT):
        self.env = {**os.environ, "CODE_TEST_POSTGRES_PORT": str(port),
                    "CODE_TEST_POSTGRES_DIR": f"/tmp/code-bench-postgres-{port}"}
        self.script = os.path.join(common.ROOT, "scripts", "test-postgres.sh")
        self.started = False
        self.admin_url = os.environ.get("BENCH_POSTGRES_URL")
        if not self.admin_url:
            self.admin_url = subprocess.run([self.script, "start"], env=self.env, capture_output=True, text=True,
                                            check=True, timeout=120).stdout.strip().splitlines()[-1]
            self.started = True

    def stop(self):
        if self.started:
            subprocess.run([self.script, "stop"], env=self.env, capture_output=True, timeout=120)
            self.started = False


class PsqlSession:
    """One psql process and connection for a run's queries: the polls while the workers run and the checks
    after. A psql per poll cost
    about 45 ms of CPU (process start-up, connection, a new server backend): polled every 0.1 s, that was
    about a sixth of this 2-core machine taken from the workers and the server being measured."""

    END = b"__psql_session_end__"

    def __init__(self, url):
        # -w: never a password prompt on the terminal; ON_ERROR_STOP: an error ends psql, and so the read.
        self.process = subprocess.Popen(
            ["psql", url, "-X", "-w", "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env={**os.environ, "PGOPTIONS": "-c statement_timeout=30000"})
        self.pending = b""

    def rows(self, sql, timeout=60):
        """Rows of a query as lists of strings. RuntimeError when psql ends first (an error) or gives no
        answer within `timeout` seconds (a server that stopped answering)."""
        deadline = time.monotonic() + timeout
        self.process.stdin.write(f"{sql.strip().rstrip(';')};\n\\echo {self.END.decode()}\n".encode())
        self.process.stdin.flush()
        rows = []
        while True:
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                if line == self.END:
                    return rows
                if line:
                    rows.append(line.decode().split("\t"))
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
                self.process.kill()
                raise RuntimeError(f"psql gave no answer within {timeout} s: {sql}")
            chunk = os.read(self.process.stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"psql ended with {self.process.wait(timeout=10)} before answering: {sql}")
            self.pending += chunk

    def close(self):
        try:
            self.process.stdin.close()
        except OSError:  # psql has ended: its pipe is broken
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def run_workers(binary_dir, admin_url, workers, deployments, log_dir=None, timeout=None):
    """One measurement: returns a dict with deployments, workers, seconds, per_second and the checks."""
    with tempfile.TemporaryDirectory() as directory:
        database, drop = common.fresh_database(directory, admin_url)
        try:
            admin = common.new_api_key()
            api = common.start_code_api(os.path.join(binary_dir, "code-api"), database, admin, log_dir=log_dir)
            try:
                started = time.monotonic()
                common.seed_deployments(api.url, admin, deployments, prefix="work", parallel=8)
                enqueue_seconds = time.monotonic() - started
            finally:
                api.stop()
            # Opened before the workers start, so that the polls take no start-up from them; closed before
            # the database is dropped.
            session = PsqlSession(database)
            try:
                processes = []
                try:
                    for index in range(workers):
                        env = common.service_env(common.free_port(), DATABASE_URL=database, WORKER_ID=f"bench-{index}",
                                                 CODE_ROLLOUT_DRIVER="simulated", CODE_SIMULATED_STEP_MS=0)
                        processes.append(common.Server(f"code-worker-{index}",
                                                       [os.path.join(binary_dir, "code-worker")], env, log_dir=log_dir))
                    deadline = time.monotonic() + (timeout or max(120, deployments / 10))
                    done = 0
                    while time.monotonic() < deadline:
                        done = int(session.rows("SELECT count(*) FROM deployments WHERE status IN "
                                                "('succeeded', 'failed', 'cancelled')",
                                                timeout=max(1.0, deadline - time.monotonic()))[0][0])
                        if done >= deployments:
                            break
                        for process in processes:
                            if process.process.poll() is not None:
                                raise RuntimeError(f"{process.name} exited with {process.process.returncode}:\n"
                                                   f"{process.tail()}")
                        time.sleep(0.1)
                    if done < deployments:
                        raise RuntimeError(f"{workers} worker(s) finished {done} of {deployments} deployments in time")
                    # Read before the stop: the worker's CPU for the whole run (start-up and idle polls included).
                    worker_cpu = sum(common.cpu_seconds(process.process.pid) for process in processes)
                finally:
                    for process in processes:
                        process.stop()
                first, last = (int(x) for x in session.rows(
                    "SELECT min(started_at), max(finished_at) FROM deployments")[0])
                checks = dict(zip(
                    ["total", "succeeded", "not_attempt_1"],
                    (int(x) for x in session.rows("SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'), "
                                                  "count(*) FILTER (WHERE attempt <> 1) FROM deployments")[0])))
                checks["finish_events_not_1"] = int(session.rows("""
                    SELECT count(*) FROM deployments d WHERE (SELECT count(*) FROM deployment_events e
                        WHERE e.deployment_id = d.id AND e.step = 'finish') <> 1""")[0][0])
                checks["claim_events_not_1"] = int(session.rows("""
                    SELECT count(*) FROM deployments d WHERE (SELECT count(*) FROM deployment_events e
                        WHERE e.deployment_id = d.id AND e.step = 'claim') <> 1""")[0][0])
                checks["worker_ids_not_1"] = int(session.rows("""
                    SELECT count(*) FROM (SELECT deployment_id FROM deployment_events WHERE worker_id IS NOT NULL
                        GROUP BY deployment_id HAVING count(DISTINCT worker_id) <> 1) x""")[0][0])
                shares = {row[0]: int(row[1]) for row in session.rows(
                    "SELECT lease_owner, count(*) FROM deployments GROUP BY lease_owner ORDER BY 1")}
            finally:
                session.close()
            exactly_once = (checks["total"] == deployments and checks["succeeded"] == deployments
                            and checks["not_attempt_1"] == 0 and checks["finish_events_not_1"] == 0
                            and checks["claim_events_not_1"] == 0 and checks["worker_ids_not_1"] == 0)
            seconds = max((last - first) / 1000, 0.001)
            return {"workers": workers, "deployments": deployments, "seconds": seconds,
                    "per_second": deployments / seconds, "enqueue_seconds": enqueue_seconds,
                    "worker_cpu_ms_per_deployment": worker_cpu * 1000 / deployments,
                    "exactly_once": exactly_once, "checks": checks, "per_worker": shares}
        finally:
            drop()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=".build/release")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--deployments", type=int, default=2000)
    args = parser.parse_args()
    postgres = Postgres()
    try:
        for count in args.workers:
            result = run_workers(args.bin, postgres.admin_url, count, args.deployments)
            print(f"{count} worker(s): {result['deployments']} deployments in {result['seconds']:.2f} s = "
                  f"{result['per_second']:.0f}/s, worker CPU {result['worker_cpu_ms_per_deployment']:.2f} ms per deployment; exactly once: {result['exactly_once']} {result['checks']}")
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
