"""The end-to-end workload of the three services, shared by the container suite and by
scripts/seccomp/derive.py (which runs the same calls against the release binaries under strace to
derive the seccomp allowlist). Plain functions over URLs and secrets: nothing here knows whether the
services run in containers or as host processes.

Every call has a timeout and every wait a deadline."""
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TERMINAL = ("succeeded", "failed", "cancelled")


class HTTPError(AssertionError):
    pass


def request(method, url, key=None, body=None, headers=None, timeout=15.0):
    """One HTTP call; returns (status, parsed JSON or text or None, headers)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            status, raw, response_headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, raw, response_headers = error.code, error.read(), error.headers
    content_type = response_headers.get("Content-Type", "")
    if raw and "json" in content_type:
        return status, json.loads(raw), response_headers
    return status, (raw.decode(errors="replace") if raw else None), response_headers


def expect(status, wanted, what, payload):
    if status != wanted:
        raise HTTPError(f"{what}: HTTP {status}, expected {wanted}: {str(payload)[:500]}")


def wait_ready(url, timeout=60.0):
    """Polls GET url until 200."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            status, body, _ = request("GET", url, timeout=2)
            if status == 200:
                return body
            last = (status, body)
        except OSError as error:
            last = error
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready within {timeout}s: {last}")


class API:
    """code-api with one key."""

    def __init__(self, base_url, key):
        self.base_url = base_url.rstrip("/")
        self.key = key

    def call(self, method, path, body=None, key=None, headers=None, wanted=None):
        status, payload, response_headers = request(method, self.base_url + path, key=self.key if key is None else key, body=body, headers=headers)
        if wanted is not None:
            expect(status, wanted, f"{method} {path}", payload)
        return status, payload, response_headers

    def create(self, wanted=201, **fields):
        body = {"service": "web", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging"}
        body.update(fields)
        return self.call("POST", "/v1/deployments", body, wanted=wanted)[1]

    def get(self, deployment_id):
        return self.call("GET", f"/v1/deployments/{deployment_id}", wanted=200)[1]

    def events(self, deployment_id):
        items, after = [], None
        for _ in range(100):
            path = f"/v1/deployments/{deployment_id}/events?limit=100" + (f"&after={after}" if after is not None else "")
            page = self.call("GET", path, wanted=200)[1]
            items += page["items"]
            after = page.get("next_after")
            if after is None:
                return items
        raise AssertionError("more than 100 pages of events")

    def wait(self, deployment_id, predicate=lambda d: d["status"] in TERMINAL, timeout=120.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            deployment = self.get(deployment_id)
            if predicate(deployment):
                return deployment
            time.sleep(0.1)
        raise TimeoutError(f"deployment {deployment_id} not in the expected state within {timeout}s: {self.get(deployment_id)}")


def api_flow(api_url, admin_key, health_url=None, timeout=120.0, slow_driver=True):
    """Every route of code-api, and one deployment through the worker. Returns what it saw.
    slow_driver: the simulated driver takes a step per replica, so a cancel always lands in time;
    a fast webhook receiver may finish first (the deployment then succeeds with cancel_requested)."""
    api = API(api_url, admin_key)
    seen = {}
    # Unauthenticated routes and errors.
    for path in ("/health", "/health/live", "/health/ready"):
        status, payload, _ = request("GET", api_url + path)
        expect(status, 200, f"GET {path}", payload)
    status, openapi, _ = request("GET", api_url + "/openapi.yaml")
    expect(status, 200, "GET /openapi.yaml", openapi)
    assert "openapi:" in openapi
    status, problem, headers = request("GET", api_url + "/v1/deployments")
    expect(status, 401, "GET /v1/deployments without a key", problem)
    assert headers.get("Content-Type", "").startswith("application/problem+json"), headers
    api.call("GET", "/v1/deployments/doesnotexist", wanted=404)
    api.call("POST", "/v1/deployments", {"service": "Bad Name!", "image": "", "environment": "nowhere"}, wanted=422)
    violation = api.call("POST", "/v1/deployments", {"service": "web", "image": "ghcr.io/acme/web:1.0.0", "environment": "production"}, wanted=422)[1]
    assert violation["code"] == "policy_violation", violation
    valid = api.call("POST", "/v1/deployments/validate", {"service": "web", "image": "nginx:1.25", "environment": "staging"}, wanted=200)[1]
    assert valid["valid"] is True, valid
    api.call("GET", "/v1/policy", wanted=200)

    # A deployment through the worker, with an idempotency key replayed.
    fields = {"replicas": 2, "labels": {"team": "e2e"}}
    if health_url:
        fields["health_url"] = health_url
    idempotency = {"Idempotency-Key": "e2e-" + hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:16]}
    created = api.call("POST", "/v1/deployments", {"service": "web", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging", **fields}, headers=idempotency, wanted=201)[1]
    replay = api.call("POST", "/v1/deployments", {"service": "web", "image": "ghcr.io/acme/web:1.0.0", "environment": "staging", **fields}, headers=idempotency)
    assert replay[0] in (200, 201) and replay[1]["id"] == created["id"], replay[:2]
    finished = api.wait(created["id"], timeout=timeout)
    assert finished["status"] == "succeeded", finished
    seen["deployment"] = finished
    manifests = api.call("GET", f"/v1/deployments/{created['id']}/manifests", wanted=200)[1]
    assert "kind: Deployment" in manifests["kubernetes"], manifests
    seen["manifests"] = manifests
    seen["events"] = api.events(created["id"])
    assert seen["events"][-1]["step"] == "finish", seen["events"][-1]
    listing = api.call("GET", "/v1/deployments?limit=5", wanted=200)[1]
    assert any(d["id"] == created["id"] for d in listing["items"]), listing
    api.call("POST", f"/v1/deployments/{created['id']}/cancel", wanted=409)

    # Cancel: queued or running, it ends cancelled.
    slow = api.create(replicas=20)
    status, cancelled, _ = api.call("POST", f"/v1/deployments/{slow['id']}/cancel")
    assert status in (200, 202), (status, cancelled)
    final = api.wait(slow["id"], timeout=timeout)
    assert final["status"] == "cancelled" or (not slow_driver and final["status"] == "succeeded" and final["cancel_requested"]), final
    seen["cancelled"] = final

    # Keys: a viewer key reads and may not write; revoked, it is refused.
    key = api.call("POST", "/v1/keys", {"name": "e2e viewer", "role": "viewer"}, wanted=201)[1]
    api.call("GET", "/v1/keys?limit=10", wanted=200)
    api.call("GET", "/v1/deployments?limit=1", key=key["secret"], wanted=200)
    api.call("POST", "/v1/deployments", {"service": "web", "image": "nginx:1.25", "environment": "staging"}, key=key["secret"], wanted=403)
    status, _, _ = api.call("DELETE", f"/v1/keys/{key['id']}")
    assert status in (200, 204), status
    api.call("GET", "/v1/deployments?limit=1", key=key["secret"], wanted=401)
    audit = api.call("GET", "/v1/audit?limit=50", wanted=200)[1]
    assert audit["items"], audit
    seen["audit"] = audit["items"]
    return seen


def worker_status(worker_url, operator_key):
    """GET /v1/worker of one worker (operator key)."""
    for path in ("/health", "/health/live", "/health/ready"):
        status, payload, _ = request("GET", worker_url + path)
        expect(status, 200, f"worker GET {path}", payload)
    status, payload, _ = request("GET", worker_url + "/v1/worker", key=operator_key)
    expect(status, 200, "worker GET /v1/worker", payload)
    request("GET", worker_url + "/v1/worker")  # 401 without a key
    return payload


def metrics(metrics_url):
    """A Prometheus scrape: GET /metrics on the metrics port."""
    status, text, _ = request("GET", metrics_url.rstrip("/") + "/metrics")
    expect(status, 200, "GET /metrics", text)
    assert "code_build_info" in text and "process_resident_memory_bytes" in text, text[:500]
    return text


def mcp_flow(mcp_url, token, timeout=120.0):
    """The MCP flow with the official Python client (legacy mode, as integration/mcp): initialize,
    tools, create_deployment with wait and progress, resources, prompts, and the DELETE at the end."""
    import anyio
    import httpx2
    from mcp.client.client import Client
    from mcp.client.streamable_http import streamable_http_client

    seen = {"methods": [], "progress": []}
    # The logging capability is deprecated in the newest MCP revision; code-mcp still offers it.
    warnings.filterwarnings("ignore", message="The logging capability is deprecated")

    async def record(response):
        seen["methods"].append(response.request.method)

    async def scenario():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=httpx2.Timeout(30, read=timeout),
                                  event_hooks={"response": [record]})
        async with Client(streamable_http_client(mcp_url, http_client=http), mode="legacy") as client:
            assert client.server_info.name == "code-mcp"
            await client.set_logging_level("info")
            tools = await client.list_tools()
            seen["tools"] = sorted(tool.name for tool in tools.tools)

            async def on_progress(value, total, message):
                seen["progress"].append((value, message))

            created = await client.call_tool(
                "create_deployment",
                {"service": "mcp-web", "image": "ghcr.io/acme/web:2.0.0", "environment": "staging", "replicas": 2, "wait": True},
                progress_callback=on_progress,
            )
            assert not created.is_error, created
            deployment = created.structured_content["deployment"]
            seen["deployment"] = deployment
            fetched = await client.call_tool("get_deployment", {"id": deployment["id"]})
            assert fetched.structured_content["deployment"]["id"] == deployment["id"]
            manifests = await client.call_tool("get_manifests", {"id": deployment["id"]})
            seen["manifests"] = manifests.structured_content
            listing = await client.call_tool("list_deployments", {"limit": 5})
            assert listing.structured_content["items"], listing
            health = await client.call_tool("service_health", {})
            seen["health"] = {name: health.structured_content[name]["status"] for name in ("api", "worker", "mcp")}
            policy = await client.read_resource("code://policy")
            seen["policy"] = policy.contents[0].text
            resource = await client.read_resource(f"code://deployments/{deployment['id']}")
            seen["resource"] = json.loads(resource.contents[0].text)
            prompts = await client.list_prompts()
            seen["prompts"] = sorted(p.name for p in prompts.prompts)
        await http.aclose()

    async def bounded():
        with anyio.fail_after(timeout + 30):
            await scenario()

    anyio.run(bounded)
    assert "DELETE" in seen["methods"], "the client ends its session with DELETE"
    return seen


def first_attempt_fails(index, attempt):
    """503 to the first attempt of every delivery (so the worker retries after a back-off, which also
    leaves time to cancel), 200 to the next."""
    return 503 if attempt == 1 else 200


REPLAY_WINDOW_SECONDS = 300


def webhook_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """X-Code-Signature of a delivery: HMAC-SHA256 of `<X-Code-Timestamp>.<body>` with the shared secret."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_webhook(secret: bytes, headers, body: bytes, now=None) -> bool:
    """What a receiver must check (docs/services/code-worker.md): the signature covers the timestamp and
    the body, and the timestamp is within REPLAY_WINDOW_SECONDS of the receiver's clock, so a captured
    delivery cannot be replayed later, nor its timestamp changed."""
    timestamp = headers.get("X-Code-Timestamp", "")
    if not timestamp.isdigit() or abs((time.time() if now is None else now) - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return False
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), headers.get("X-Code-Signature", ""))


class WebhookReceiver:
    """A rollout webhook receiver on loopback that verifies deliveries as the documentation says
    (verify_webhook): 401 to a bad signature or a stale timestamp, otherwise `answer(index, attempt)` (the
    delivery's index among all POSTs, and its attempt number for its `X-Code-Delivery`); 200 to GET (as a
    health_url). A POST to /moved is redirected (302) to /elsewhere, which counts what reaches it. Used by
    derive.py and the worker suite."""

    def __init__(self, secret, host="127.0.0.1", answer=first_attempt_fails):
        self.secret = secret.strip().encode()
        self.deliveries = []
        self.health_checks = 0
        self.health_traceparents = []
        self.elsewhere = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path == "/moved":
                    return self.answer(302, location="/elsewhere")
                if self.path == "/elsewhere":
                    receiver.elsewhere += 1
                    return self.answer(200)
                valid = verify_webhook(receiver.secret, self.headers, body)
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = None
                receiver.deliveries.append({
                    "valid": valid, "delivery": self.headers.get("X-Code-Delivery"), "body": payload, "raw": body,
                    "timestamp": self.headers.get("X-Code-Timestamp"), "signature": self.headers.get("X-Code-Signature"),
                    "traceparent": self.headers.get("traceparent"),
                })
                attempt = sum(1 for d in receiver.deliveries if d["delivery"] == self.headers.get("X-Code-Delivery"))
                self.answer(401 if not valid else answer(len(receiver.deliveries) - 1, attempt))

            def do_GET(self):
                if self.path == "/elsewhere":
                    receiver.elsewhere += 1
                    return self.answer(200)
                receiver.health_checks += 1
                receiver.health_traceparents.append(self.headers.get("traceparent"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def answer(self, status, location=None):
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://{host}:{self.port}"
        self.url = f"{self.base_url}/hooks/rollout"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
