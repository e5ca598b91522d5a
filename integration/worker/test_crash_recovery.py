"""kill -9 a worker in the middle of a pipeline, start another: the deployment ends in exactly one
terminal state, its attempt count shows the takeover, and its events tell the story. Both backends."""
from conftest import new_key
from containers.workload import API


def test_killed_worker_is_taken_over_and_the_deployment_ends_once(services, database_url):
    admin = new_key()
    api = services("code-api", {"DATABASE_URL": database_url, "CODE_ADMIN_KEY": admin})
    client = API(api.url, admin)
    worker_env = {
        "DATABASE_URL": database_url,
        "CODE_LEASE_SECONDS": "2",
        "CODE_SIMULATED_STEP_MS": "1500",
        "CODE_POLL_INTERVAL_MS": "100",
    }
    first = services("code-worker", {**worker_env, "WORKER_ID": "doomed"})

    deployment = client.create(replicas=3)
    # Wait until the first worker is inside the rollout (between two replicas), then kill it hard.
    client.wait(deployment["id"], lambda d: d["status"] == "running" and d["lease_owner"] == "doomed")
    deadline_events = lambda: [e for e in client.events(deployment["id"]) if e["step"] == "rollout" and e["kind"] == "info"]
    import time
    for _ in range(200):
        if deadline_events():
            break
        time.sleep(0.05)
    assert deadline_events(), "the first worker never got into the rollout"
    first.kill()

    # The lease (2 s) expires; a new worker takes over with attempt 2 and finishes the deployment.
    services("code-worker", {**worker_env, "WORKER_ID": "rescuer", "CODE_SIMULATED_STEP_MS": "50"})
    finished = client.wait(deployment["id"], timeout=60)
    assert finished["status"] == "succeeded"
    assert finished["attempt"] == 2

    events = client.events(deployment["id"])
    finishes = [e for e in events if e["step"] == "finish"]
    assert len(finishes) == 1 and finishes[0].get("worker_id") == "rescuer"
    claims = [(e.get("worker_id"), e["attempt"]) for e in events if e["step"] == "claim"]
    assert claims == [("doomed", 1), ("rescuer", 2)]
    # The story: the first attempt got into the rollout and stopped there; the second did every step.
    first_attempt = [e for e in events if e["attempt"] == 1 and e.get("worker_id") == "doomed"]
    assert any(e["step"] == "rollout" and e["kind"] == "started" for e in first_attempt)
    assert not any(e["step"] == "rollout" and e["kind"] == "finished" for e in first_attempt)
    second_attempt = [(e["step"], e["kind"]) for e in events if e["attempt"] == 2]
    for step in ("validate", "render", "rollout"):
        assert (step, "finished") in second_attempt
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
