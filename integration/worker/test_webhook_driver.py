"""The webhook driver against a real local HTTP receiver that checks the HMAC-SHA256 signature and
fails the first attempts: the worker retries the 5xx answers and the deployment succeeds; a 4xx is
final after one delivery."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import APIClient, new_key


class Receiver:
    def __init__(self, secret: str, answers: list):
        self.secret = secret.encode()
        self.answers = answers
        self.deliveries = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                valid = hmac.compare_digest(expected, self.headers.get("X-Code-Signature-256", ""))
                receiver.deliveries.append({"valid": valid, "delivery": self.headers.get("X-Code-Delivery"), "body": json.loads(body)})
                index = len(receiver.deliveries) - 1
                status = 401 if not valid else (receiver.answers[index] if index < len(receiver.answers) else 200)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/rollout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stack(services, workdir):
    admin = new_key()
    secret = "whsec-" + new_key()
    started = []

    def start(answers):
        receiver = Receiver(secret, answers)
        started.append(receiver)
        database = f"sqlite://{workdir}/code.db"
        api = services("code-api", {"DATABASE_URL": database, "CODE_ADMIN_KEY": admin})
        secret_file = workdir / "webhook_secret"
        secret_file.write_text(secret + "\n")
        services("code-worker", {
            "DATABASE_URL": database, "CODE_ROLLOUT_DRIVER": "webhook", "CODE_WEBHOOK_URL": receiver.url,
            "CODE_WEBHOOK_SECRET_FILE": str(secret_file), "CODE_WEBHOOK_MAX_ATTEMPTS": "5", "CODE_WEBHOOK_TIMEOUT": "2",
        })
        return APIClient(api.url, admin), receiver

    yield start
    for receiver in started:
        receiver.close()


def test_server_errors_are_retried_with_the_same_signed_delivery(stack):
    client, receiver = stack([503, 500])
    deployment = client.create_deployment(replicas=2)
    finished = client.wait_finished(deployment["id"], timeout=60)
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
    deployment = client.create_deployment()
    finished = client.wait_finished(deployment["id"], timeout=60)
    assert finished["status"] == "failed"
    assert "HTTP 400; not retried" in finished["error"]
    assert len(receiver.deliveries) == 1
