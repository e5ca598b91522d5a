"""Drill (issue 12): kill -9 a worker at random points, 50 rounds, two workers on PostgreSQL with the
webhook driver and a 2 s lease. Every deployment ends in exactly one terminal state, no deployment goes
longer than a lease plus 5 s without progress, and the receiver sees an accepted delivery for every
succeeded deployment.

Delivery is at least once, not exactly once: a worker killed after the receiver accepted its delivery
but before it recorded that, leaves the deployment to a worker that delivers again (a new attempt). What
holds, and what this drill asserts:
  - every succeeded deployment has at least one accepted delivery;
  - at most one accepted delivery per (deployment, attempt): fencing stops a stale pipeline;
  - deduplicated by the deployment id in the signed body (the idempotency key a receiver should use),
    the receiver applies exactly one rollout per succeeded deployment, and none for another outcome
    unless a killed attempt delivered it first.
The redeliveries are counted and printed."""
import random
import time
from datetime import datetime

from conftest import new_key
from containers.workload import API
from containers.workload import TERMINAL
from containers.workload import WebhookReceiver

ROUNDS = 50
LEASE_SECONDS = 2
# A bound for the whole drill, so that a hang fails it instead of holding up CI.
DRILL_SECONDS = 150


def parse_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_kill_9_workers_at_random_points(services, postgres_database, workdir, drill_figures):
    started = time.monotonic()
    rng = random.Random(12)  # the kill schedule, reproducible
    receiver_delays = random.Random(13)  # used from the receiver's threads
    admin = new_key()
    secret = "whsec-" + new_key()
    secret_file = workdir / "webhook_secret"
    secret_file.write_text(secret + "\n")

    def answer(index, attempt):
        # A receiver that takes a moment, so that kills land during deliveries too.
        time.sleep(receiver_delays.uniform(0, 0.2))
        return 200

    receiver = WebhookReceiver(secret, answer=answer)
    try:
        api = services("code-api", {"DATABASE_URL": postgres_database, "CODE_ADMIN_KEY": admin, "LOG_LEVEL": "warning"})
        client = API(api.url, admin)
        worker_env = {
            "DATABASE_URL": postgres_database, "CODE_ROLLOUT_DRIVER": "webhook", "CODE_WEBHOOK_URL": receiver.url,
            "CODE_WEBHOOK_SECRET_FILE": str(secret_file), "CODE_WEBHOOK_TIMEOUT": "2", "CODE_WEBHOOK_MAX_ATTEMPTS": "5",
            "CODE_LEASE_SECONDS": str(LEASE_SECONDS), "CODE_POLL_INTERVAL_MS": "200", "WORKER_CONCURRENCY": "4",
            "CODE_MAX_ATTEMPTS": "3", "LOG_LEVEL": "warning",
        }
        # Restarted workers keep their id: the fencing token (attempt), not the id, tells a stale pipeline.
        workers = {name: services("code-worker", {**worker_env, "WORKER_ID": name}) for name in ("kill-a", "kill-b")}

        created = []
        kills = 0
        for _ in range(ROUNDS):
            for _ in range(rng.randint(1, 2)):
                created.append(client.create(service=f"drill-{len(created)}", replicas=1 + len(created) % 3)["id"])
            time.sleep(rng.uniform(0.0, 0.4))
            name = rng.choice(sorted(workers))
            workers[name].kill()
            kills += 1
            workers[name] = services("code-worker", {**worker_env, "WORKER_ID": name})
            assert time.monotonic() - started < DRILL_SECONDS, "the drill took too long"

        # One deadline for all the waits, not one each.
        deadline = time.monotonic() + max(10.0, DRILL_SECONDS - (time.monotonic() - started))
        finished = [client.wait(deployment_id, timeout=max(0.1, deadline - time.monotonic())) for deployment_id in created]
        statuses = {}
        for deployment in finished:
            statuses[deployment["status"]] = statuses.get(deployment["status"], 0) + 1
        assert all(d["status"] in TERMINAL for d in finished)

        longest_gap = 0.0
        redelivered = 0
        accepted = [d for d in receiver.deliveries if d["valid"]]
        by_deployment = {}
        for delivery in accepted:
            body = delivery["body"]
            by_deployment.setdefault(body["deployment"]["id"], []).append(body["attempt"])
        for deployment in finished:
            events = client.events(deployment["id"])
            # Exactly one terminal state: one final event, from the store or a worker.
            finals = [e for e in events if e["kind"] == "finished" and e["step"] in ("finish", "lease", "cancel")]
            assert len(finals) == 1, (deployment["id"], finals)
            # Progress: from creation through every event to the end, no gap longer than a lease plus 5 s.
            times = [parse_time(deployment["created_at"])] + [parse_time(e["at"]) for e in events]
            gaps = [later - earlier for earlier, later in zip(times, times[1:])]
            longest_gap = max([longest_gap] + gaps)
            attempts = by_deployment.get(deployment["id"], [])
            assert len(attempts) == len(set(attempts)), f"two accepted deliveries in one attempt: {deployment['id']} {attempts}"
            if deployment["status"] == "succeeded":
                assert attempts, f"succeeded without an accepted delivery: {deployment['id']}"
                assert deployment["attempt"] in attempts, "the attempt that succeeded delivered"
            redelivered += max(0, len(attempts) - 1)
        assert longest_gap <= LEASE_SECONDS + 5, f"a deployment waited {longest_gap:.1f} s"
        duration = time.monotonic() - started
        drill_figures.append(
            f"kill -9 drill: {ROUNDS} rounds, {kills} kills, {len(created)} deployments {statuses}, "
            f"longest wait without progress {longest_gap:.2f} s (bound {LEASE_SECONDS + 5} s), "
            f"{len(accepted)} accepted deliveries for {len(by_deployment)} deployments ({redelivered} redeliveries after a kill), "
            f"{duration:.0f} s"
        )
    finally:
        receiver.close()
