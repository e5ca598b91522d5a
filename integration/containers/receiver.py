"""Webhook receiver for the container suite (compose.e2e.yaml): the rollout target of code-worker's
webhook driver inside the project's network. Python 3 standard library only.

POST /hooks/rollout  checks X-Code-Signature (HMAC-SHA256 of "<X-Code-Timestamp>.<body>" with the
                     secret in WEBHOOK_SECRET_FILE) and that the timestamp is within 5 minutes of this
                     clock (docs/services/code-worker.md); answers 503 to the first attempt of each
                     delivery (the worker must retry) and 200 to the next; 401 to a bad signature or a
                     stale timestamp.
GET  /healthz        200: a deployment's health_url, polled by the worker's verify step.
GET  /deliveries     what arrived, as JSON, for the test (published on 127.0.0.1 only).
"""
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = open(os.environ.get("WEBHOOK_SECRET_FILE", "/run/secrets/webhook_secret"), "rb").read().strip()
deliveries = []
health_checks = []
lock = threading.Lock()
REPLAY_WINDOW_SECONDS = 300


def verify(headers, body):
    """The signature covers the timestamp, and the timestamp must be recent: a captured delivery can be
    neither replayed later nor re-dated."""
    timestamp = headers.get("X-Code-Timestamp", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return False
    expected = "sha256=" + hmac.new(SECRET, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Code-Signature", ""))


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body=b"", content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        valid = verify(self.headers, body)
        delivery = self.headers.get("X-Code-Delivery")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        with lock:
            attempt = 1 + sum(1 for d in deliveries if d["delivery"] == delivery)
            status = 401 if not valid else (503 if attempt == 1 else 200)
            deliveries.append({
                "valid": valid, "delivery": delivery, "attempt": attempt, "status": status,
                "deployment_id": (payload or {}).get("deployment", {}).get("id"),
                "event": (payload or {}).get("event"), "has_manifests": "kubernetes" in (payload or {}).get("manifests", {}),
            })
        self.reply(status)

    def do_GET(self):
        if self.path == "/healthz":
            with lock:
                health_checks.append(self.headers.get("User-Agent", ""))
            self.reply(200, b"{\"status\":\"ok\"}")
        elif self.path == "/deliveries":
            with lock:
                body = json.dumps({"deliveries": deliveries, "health_checks": len(health_checks)}).encode()
            self.reply(200, body)
        else:
            self.reply(404)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("0.0.0.0", int(os.environ.get("PORT", "8080"))), Handler)
signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
print("receiver listening", flush=True)
server.serve_forever()
server.server_close()
sys.exit(0)
