"""The webhook driver against a real local HTTP receiver that checks the HMAC-SHA256 signature and
fails the first attempts: the worker retries the 5xx answers and the deployment succeeds; a 4xx is
final after one delivery."""
import pytest

from conftest import new_key
from containers.workload import API
from containers.workload import WebhookReceiver


@pytest.fixture
def stack(services, workdir):
    admin = new_key()
    secret = "whsec-" + new_key()
    started = []

    def start(answers):
        receiver = WebhookReceiver(secret, answer=lambda index, attempt: answers[index] if index < len(answers) else 200)
        started.append(receiver)
        database = f"sqlite://{workdir}/code.db"
        api = services("code-api", {"DATABASE_URL": database, "CODE_ADMIN_KEY": admin})
        secret_file = workdir / "webhook_secret"
        secret_file.write_text(secret + "\n")
        services("code-worker", {
            "DATABASE_URL": database, "CODE_ROLLOUT_DRIVER": "webhook", "CODE_WEBHOOK_URL": receiver.url,
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
    assert all(d["valid"] for d in receiver.deliveries), "every delivery carries a valid signature"
    assert len({d["delivery"] for d in receiver.deliveries}) == 1, "retries repeat the delivery id"
    body = receiver.deliveries[-1]["body"]
    assert body["event"] == "deployment.rollout"
    assert body["deployment"]["id"] == deployment["id"]
    assert "kind: Deployment" in body["manifests"]["kubernetes"]
    messages = [e["message"] for e in client.events(deployment["id"]) if e["step"] == "rollout" and e["kind"] == "info"]
    assert "HTTP 503" in messages[0] and "HTTP 500" in messages[1] and "accepted" in messages[2], messages


def test_client_error_is_final_after_one_delivery(stack):
    client, receiver = stack([400])
    deployment = client.create()
    finished = client.wait(deployment["id"], timeout=60)
    assert finished["status"] == "failed"
    assert "HTTP 400; not retried" in finished["error"]
    assert len(receiver.deliveries) == 1
