"""Stop and restart of the hardened stack: `docker compose stop` sends SIGTERM and every service
exits 0 within its drain time (the worker releases the deployment it was running), and the data
survives `down` (without -v) and `up`: the finished deployment is still there and the released one
is taken up again and finishes."""
from datetime import datetime

from . import workload
from .stacks import SERVICES, STOP_GRACE_SECONDS, inspect


def timestamp(value: str) -> float:
    # Docker's RFC 3339 with nanoseconds: keep microseconds for datetime.
    head, _, fraction = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00").timestamp()


def test_stop_drains_every_service_to_exit_0_and_data_survives_down_and_up(stack, urls, measurements):
    api = workload.API(urls["api"], stack.secret("admin_key"))
    done = api.create(replicas=1)
    assert api.wait(done["id"])["status"] == "succeeded"
    # A deployment in flight when the worker gets SIGTERM: 60 replicas of 200 ms.
    running = api.create(replicas=60)
    api.wait(running["id"], lambda d: d["status"] == "running", timeout=60)

    before = {service: stack.container(service) for service in SERVICES}
    stopped_at = datetime.now().timestamp()
    stack.compose("stop", timeout=120)
    drains = {}
    for service, container in before.items():
        state = inspect(container)["State"]
        assert state["Status"] == "exited", (service, state)
        assert state["ExitCode"] == 0 and not state["OOMKilled"], (service, state)
        drains[service] = timestamp(state["FinishedAt"]) - stopped_at
    # compose stops mcp, then the worker, then the api (reverse dependency order): each one's drain
    # is the time since the previous one exited.
    order = sorted(drains, key=drains.get)
    previous = 0.0
    for service in order:
        took = drains[service] - previous
        previous = drains[service]
        assert took < STOP_GRACE_SECONDS, f"{service} took {took:.1f}s to exit after SIGTERM (grace {STOP_GRACE_SECONDS}s)"
        measurements.append(f"drain after SIGTERM (compose stop): {service} exited 0 in {took:.2f} s")
    measurements.append(f"compose stop of the three: {drains[order[-1]]:.2f} s")

    stack.down(volumes=False)
    assert not stack.containers(all_states=True), "down removes the containers"
    seconds = stack.up()
    measurements.append(f"up --wait after down (the hardened base, SQLite): {seconds:.1f} s")
    assert {service: stack.container(service) for service in SERVICES} != before, "new containers"

    assert api.get(done["id"])["status"] == "succeeded", "the finished deployment survived down and up"
    resumed = api.wait(running["id"], timeout=120)
    assert resumed["status"] == "succeeded" and resumed["attempt"] >= 2, resumed
    messages = [event["message"] for event in api.events(running["id"])]
    assert any("shutting down" in message for message in messages), messages
