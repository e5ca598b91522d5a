"""Three worker processes share one PostgreSQL database and 200 deployments: every deployment finishes
exactly once, and no deployment is ever held by two workers (one claim, one attempt, one worker id)."""
import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from conftest import new_key
from containers.workload import API

DEPLOYMENTS = 200
WORKERS = 3


def test_three_workers_finish_200_deployments_exactly_once(services, postgres_database):
    admin = new_key()
    api = services("code-api", {"DATABASE_URL": postgres_database, "CODE_ADMIN_KEY": admin})
    client = API(api.url, admin)
    workers = [
        services("code-worker", {
            "DATABASE_URL": postgres_database, "WORKER_ID": f"scale-{index}", "WORKER_CONCURRENCY": "4",
            "CODE_SIMULATED_STEP_MS": "5", "CODE_POLL_INTERVAL_MS": "250",
        })
        for index in range(WORKERS)
    ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(lambda i: client.create(service=f"svc-{i}", replicas=1 + i % 3)["id"], range(DEPLOYMENTS)))
    assert len(set(created)) == DEPLOYMENTS

    finished = [client.wait(deployment_id, timeout=180) for deployment_id in created]
    assert all(d["status"] == "succeeded" for d in finished), [d for d in finished if d["status"] != "succeeded"][:3]
    assert all(d["attempt"] == 1 for d in finished), "no deployment was claimed twice"

    holders = {}
    for deployment_id in created:
        events = client.events(deployment_id)
        finishes = [e for e in events if e["step"] == "finish"]
        assert len(finishes) == 1, (deployment_id, finishes)
        claims = [e for e in events if e["step"] == "claim"]
        assert len(claims) == 1, (deployment_id, claims)
        worker_ids = {e["worker_id"] for e in events if e.get("worker_id")}
        assert len(worker_ids) == 1, (deployment_id, worker_ids)
        holders[deployment_id] = worker_ids.pop()

    # The work was shared, and every worker's own count agrees with the events.
    counts = {}
    for worker in workers:
        request = urllib.request.Request(worker.url + "/v1/worker", headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            status = json.load(response)
        counts[status["worker_id"]] = status["counts"]["succeeded"]
    assert sum(counts.values()) == DEPLOYMENTS
    for worker_id, count in counts.items():
        assert count == sum(1 for holder in holders.values() if holder == worker_id)
    assert sum(1 for count in counts.values() if count > 0) >= 2, f"the work was not shared: {counts}"
    print(f"scale: {DEPLOYMENTS} deployments over {WORKERS} workers: {counts}")
