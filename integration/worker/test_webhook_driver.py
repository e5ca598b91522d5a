"""The webhook driver against a real local HTTP receiver that verifies deliveries as the documentation
says (HMAC-SHA256 of "<timestamp>.<body>", a five-minute replay window) and fails the first attempts:
the worker retries the 5xx answers and the deployment succeeds; a 4xx or a 3xx is final after one
delivery, and a redirect is never followed; a secret shorter than 32 bytes stops the worker at start."""
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import bin_dir
from conftest import free_port
from conftest import new_key
from containers.workload import API
from containers.workload import WebhookReceiver
from containers.workload import webhook_signature


@pytest.fixture
def stack(services, workdir):
    admin = new_key()
    secret = "whsec-" + new_key()
    started = []

    def start(answers, path="/hooks/rollout"):
        receiver = WebhookReceiver(secret, answer=lambda index, attempt: answers[index] if index < len(answers) else 200)
        started.append(receiver)
        database = f"sqlite://{workdir}/code.db"
        api = services("code-api", {"DATABASE_URL": database, "CODE_ADMIN_KEY": admin})
        secret_file = workdir / "webhook_secret"
        secret_file.write_text(secret + "\n")
        services("code-worker", {
            "DATABASE_URL": database, "CODE_ROLLOUT_DRIVER": "webhook", "CODE_WEBHOOK_URL": receiver.base_url + path,
            "CODE_WEBHOOK_SECRET_FILE": str(secret_file), "CODE_WEBHOOK_MAX_ATTEMPTS": "5", "CODE_WEBHOOK_TIMEOUT": "2",
        })
        return API(api.url, admin), receiver

    yield start
    for receiver in started:
        receiver.close()


def test_server_errors_are_retried_with_the_same_signed_delivery(stack):
    client, receiver = stack([503, 500])
    deployment = client.create(replicas=2)
    finished = client.wait(deployment["id"], timeout=60)
    assert finished["status"] == "succeeded", finished
    assert len(receiver.deliveries) == 3
    assert all(d["valid"] for d in receiver.deliveries), "every delivery carries a valid, fresh signature"
    assert len({d["delivery"] for d in receiver.deliveries}) == 1, "retries repeat the delivery id"
    body = receiver.deliveries[-1]["body"]
    assert body["event"] == "deployment.rollout"
    assert body["deployment"]["id"] == deployment["id"]
    assert "kind: Deployment" in body["manifests"]["kubernetes"]
    messages = [e["message"] for e in client.events(deployment["id"]) if e["step"] == "rollout" and e["kind"] == "info"]
    assert "HTTP 503" in messages[0] and "HTTP 500" in messages[1] and "accepted" in messages[2], messages


def post(url, body, headers):
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_the_signature_covers_the_timestamp_so_a_replay_is_refused(stack):
    client, receiver = stack([])
    finished = client.wait(client.create(replicas=1)["id"], timeout=60)
    assert finished["status"] == "succeeded", finished
    captured = receiver.deliveries[0]
    assert captured["valid"] and captured["timestamp"].isdigit(), captured
    assert abs(time.time() - int(captured["timestamp"])) < 60, "the timestamp is the time of sending"
    original = {"X-Code-Timestamp": captured["timestamp"], "X-Code-Signature": captured["signature"], "X-Code-Delivery": "replay"}
    # Re-dating a captured delivery breaks its signature.
    redated = {**original, "X-Code-Timestamp": str(int(time.time()) + 1)}
    assert post(receiver.url, captured["raw"], redated) == 401
    # A delivery signed six minutes ago (as if captured then) is outside the five-minute window.
    old = str(int(time.time()) - 360)
    stale = {**original, "X-Code-Timestamp": old, "X-Code-Signature": webhook_signature(receiver.secret, old, captured["raw"])}
    assert post(receiver.url, captured["raw"], stale) == 401
    # The body is covered too.
    assert post(receiver.url, captured["raw"] + b" ", original) == 401
    print(f"replays refused: re-dated, {int(time.time()) - int(old)} s old, altered body")


def test_client_error_is_final_after_one_delivery(stack):
    client, receiver = stack([400])
    deployment = client.create()
    finished = client.wait(deployment["id"], timeout=60)
    assert finished["status"] == "failed"
    assert "HTTP 400; not retried" in finished["error"]
    assert len(receiver.deliveries) == 1


def test_a_redirect_is_a_failed_delivery_and_is_not_followed(stack):
    client, receiver = stack([], path="/moved")
    finished = client.wait(client.create()["id"], timeout=60)
    assert finished["status"] == "failed", finished
    assert "HTTP 302" in finished["error"], finished["error"]
    assert receiver.elsewhere == 0, "the worker did not follow the redirect"


def test_a_webhook_secret_shorter_than_32_bytes_is_refused_at_startup(workdir):
    env = {
        "PATH": "/usr/bin:/bin", "HOST": "127.0.0.1", "PORT": str(free_port()), "METRICS_PORT": "0", "DATABASE_URL": f"sqlite://{workdir}/code.db",
        "CODE_ROLLOUT_DRIVER": "webhook", "CODE_WEBHOOK_URL": "http://127.0.0.1:9/hooks", "CODE_WEBHOOK_SECRET": "s" * 31,
    }
    try:
        result = subprocess.run([str(bin_dir() / "code-worker")], env=env, capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError("the worker started with a 31-byte webhook secret") from None
    assert result.returncode == 78, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "configuration error: CODE_WEBHOOK_SECRET: must be at least 32 bytes" in lines[0], result.stderr
