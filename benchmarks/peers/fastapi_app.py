"""The Python peer of code-api for the benchmarks: FastAPI on uvicorn (uvloop + httptools, 4 worker
processes), serving the same four endpoints with the same work on SQLite.

- GET /health/live: {"status": "ok", "service", "version"}, as code-api answers.
- Every /v1 request: `Authorization: Bearer <key>` parsed and checked for shape as code-api does, the
  SHA-256 of the secret looked up in api_keys, a found key kept for at most a second per worker process
  (code-api's APIKeyCache with its default CODE_KEY_CACHE_SECONDS=1: the same bound on revocation across
  processes, its expiry counted from before the lookup, at most 1024 keys), compared in constant time,
  revoked keys refused, the role checked (viewer reads, operator creates); `last_used_at` written at most
  once a minute per key (code-api's resolution).
- GET /v1/deployments/{id}: one SELECT of the deployment row, mapped to the contract's Deployment JSON.
- GET /v1/deployments?limit=20: the same SELECT as code-api's store (optional status/service/environment
  filters, `seq < cursor`, ORDER BY seq DESC LIMIT limit+1), items and next_cursor (base 36 of seq).
- POST /v1/deployments: the body validated like code-api (unknown fields refused, service a DNS label,
  an OCI image reference by the distribution grammar, environment and strategy enums, replicas 1-100,
  health_url, labels by Kubernetes' rules) and the deployment policy (no 'latest' or missing tag outside
  development, digest in production); the id a version 7 UUID, time first, as code-api makes it (so the
  id and events indexes grow at their right edge here too); then in ONE write transaction (BEGIN IMMEDIATE, as GRDB's
  pool.write) the deployment row, its `queue` event and the audit row; 201 with Location. A refused
  request is audited too (outcome failed), as code-api does. Idempotency-Key is honoured the same way.
- Problems as application/problem+json with code-api's fields; every response has an X-Request-ID.

SQLite: one connection per worker process, WAL, synchronous=NORMAL, foreign_keys=ON and a 10 s busy
timeout: the settings of code-api's SQLiteStore (GRDB DatabasePool). The schema is code-api's (the
columns of SchemaMigrations.sqlite after all four migrations), created once by `main` before the
workers start.

    python fastapi_app.py --port 8100 --database /tmp/peer.db --admin-key code_... [--workers 4]
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import sqlite3
import time
import uuid
from datetime import datetime, timezone
from typing import Optional
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

DATABASE = os.environ.get("PEER_DATABASE", "peer.db")
SERVICE = "fastapi-peer"
VERSION = "1.0.0"

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, service TEXT NOT NULL, image TEXT NOT NULL,
    image_registry TEXT NOT NULL, image_repository TEXT NOT NULL, image_tag TEXT, image_digest TEXT,
    environment TEXT NOT NULL, strategy TEXT NOT NULL, replicas INTEGER NOT NULL, health_url TEXT,
    labels TEXT NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_expires_at INTEGER, created_by TEXT,
    idempotency_key TEXT, request_hash TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    started_at INTEGER, finished_at INTEGER,
    failures INTEGER NOT NULL DEFAULT 0, releases INTEGER NOT NULL DEFAULT 0, trace_parent TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS deployments_idempotency ON deployments (created_by, idempotency_key);
CREATE INDEX IF NOT EXISTS deployments_status ON deployments (status, seq);
CREATE INDEX IF NOT EXISTS deployments_service ON deployments (service, seq);
CREATE INDEX IF NOT EXISTS deployments_environment ON deployments (environment, seq);
CREATE TABLE IF NOT EXISTS deployment_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, deployment_id TEXT NOT NULL REFERENCES deployments (id),
    at INTEGER NOT NULL, attempt INTEGER NOT NULL, worker_id TEXT, step TEXT NOT NULL, kind TEXT NOT NULL,
    outcome TEXT, duration_ms INTEGER, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS deployment_events_deployment ON deployment_events (deployment_id, seq);
CREATE TABLE IF NOT EXISTS api_keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, role TEXT NOT NULL,
    prefix TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, created_by TEXT,
    last_used_at INTEGER, revoked_at INTEGER);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, key_id TEXT, action TEXT NOT NULL, target TEXT,
    outcome TEXT NOT NULL, status INTEGER NOT NULL, request_id TEXT, method TEXT NOT NULL, path TEXT NOT NULL,
    client TEXT);
"""

DEPLOYMENT_COLUMNS = ("seq, id, service, image, image_registry, image_repository, image_tag, image_digest, environment, "
                      "strategy, replicas, health_url, labels, status, attempt, error, cancel_requested, lease_owner, "
                      "lease_expires_at, created_by, idempotency_key, request_hash, created_at, updated_at, started_at, "
                      "finished_at, failures, releases, trace_parent")
KEY_COLUMNS = "seq, id, name, role, prefix, secret_hash, created_at, created_by, last_used_at, revoked_at"

ROLES = {"viewer": 0, "operator": 1, "admin": 2}
ENVIRONMENTS = ("development", "staging", "production")
STRATEGIES = ("rolling", "recreate", "blue_green", "canary")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
LAST_USED_RESOLUTION_MS = 60_000


def connect(path):
    """One connection per process, with SQLiteStore's settings. Autocommit mode: transactions are begun
    explicitly (BEGIN IMMEDIATE for writes, as GRDB does)."""
    connection = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False,
                                 cached_statements=256)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


_connection = None


def db():
    """This worker process's connection, opened on first use (after the fork)."""
    global _connection
    if _connection is None:
        _connection = connect(DATABASE)
    return _connection


def now_ms():
    return int(round(time.time() * 1000))


def iso(ms):
    """RFC 3339 with milliseconds, UTC: what code-api writes (ISO 8601 with fractional seconds)."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


# ---------------------------------------------------------------------------------------------------
# Problems


def problem(status, code, detail, request_id, title=None, extra=None, headers=None):
    body = {"type": f"urn:code-services:problem:{code}", "title": title or TITLES.get(status, f"HTTP {status}"),
            "status": status, "detail": detail, "code": code, "request_id": request_id}
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers={"X-Request-ID": request_id, **(headers or {})})


TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
          415: "Unsupported Media Type", 422: "Unprocessable Content", 500: "Internal Server Error"}


class Refusal(Exception):
    def __init__(self, status, code, detail, extra=None, headers=None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra, self.headers = status, code, detail, extra, headers


REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(request: Request):
    """The client's X-Request-ID when it is acceptable (code-api's rule), else a new UUID."""
    candidate = request.headers.get("x-request-id")
    if candidate and REQUEST_ID.fullmatch(candidate):
        return candidate
    return str(uuid.uuid4())


def time_ordered_id(prefix):
    """`prefix` and a version 7 UUID (RFC 9562) in hex: 48 bits of Unix time in milliseconds, the version,
    12 random bits, the variant, 62 random bits. code-api's TimeOrderedID (Sources/CodeStore)."""
    random = int.from_bytes(os.urandom(10), "big")
    value = ((time.time_ns() // 1_000_000) & (1 << 48) - 1) << 80 | 0x7 << 76 | (random >> 62 & 0xFFF) << 64 \
        | 0b10 << 62 | random & (1 << 62) - 1
    return prefix + f"{value:032x}"


# ---------------------------------------------------------------------------------------------------
# Authentication (BearerAuthentication.authenticate and AccessMiddleware of code-api)

SECRET_SHAPE = re.compile(r"code_[A-Za-z0-9_-]{43,512}")
# Keys found by their secret's hash, in this worker process: hash -> (row, monotonic expiry).
KEY_CACHE = {}
KEY_CACHE_SECONDS = 1.0
KEY_CACHE_CAPACITY = 1024


def authenticate(request: Request, role: str):
    """The key of this request if it is valid, not revoked and its role allows `role`; Refusal otherwise."""
    header = request.headers.get("authorization")
    if header is None:
        raise Refusal(401, "unauthorized", "Send an API key as 'Authorization: Bearer <key>'.",
                      headers={"WWW-Authenticate": "Bearer"})
    parts = header.split(" ", 1)
    secret = parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else None
    if not secret or not SECRET_SHAPE.fullmatch(secret):
        raise Refusal(401, "unauthorized", "The API key is not valid.", headers={"WWW-Authenticate": "Bearer"})
    digest = hashlib.sha256(secret.encode()).hexdigest()
    looked_up_at = time.monotonic()
    cached = KEY_CACHE.get(digest)
    if cached is not None and looked_up_at < cached[1]:
        row = cached[0]
    else:
        row = db().execute(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE secret_hash = ?", (digest,)).fetchone()
        if row is not None:
            if len(KEY_CACHE) >= KEY_CACHE_CAPACITY and digest not in KEY_CACHE:
                for stale in [hash_ for hash_, (_, expires) in KEY_CACHE.items() if expires <= looked_up_at]:
                    del KEY_CACHE[stale]
                if len(KEY_CACHE) >= KEY_CACHE_CAPACITY:
                    KEY_CACHE.clear()
            KEY_CACHE[digest] = (row, looked_up_at + KEY_CACHE_SECONDS)
    if row is None or not hmac.compare_digest(row[5], digest) or row[9] is not None:
        raise Refusal(401, "unauthorized", "The API key is not valid.", headers={"WWW-Authenticate": "Bearer"})
    key_id, key_role, last_used = row[1], row[3], row[8]
    now = now_ms()
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION_MS:
        connection = db()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, key_id))
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        if digest in KEY_CACHE:  # the cached row answers with the use just recorded, as code-api's does
            cached_row, expires = KEY_CACHE[digest]
            KEY_CACHE[digest] = (cached_row[:8] + (now,) + cached_row[9:], expires)
    if ROLES.get(key_role, -1) < ROLES[role]:
        raise Refusal(403, "forbidden", f"This needs the {role} role; the key has {key_role}.")
    return key_id


# ---------------------------------------------------------------------------------------------------
# Validation (DeploymentSpec.validate, ImageReference, LabelRules, DeploymentPolicy of CodeDomain)

DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
HOST_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
LABEL_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
DIGEST_ALGORITHM = re.compile(r"[a-z0-9+._-]+")
HEX = re.compile(r"[0-9a-f]+")


class ImageError(Exception):
    pass


def is_digest(text):
    algorithm, sep, hex_part = text.partition(":")
    if not sep or not algorithm or not DIGEST_ALGORITHM.fullmatch(algorithm) or len(hex_part) < 32 \
            or not HEX.fullmatch(hex_part):
        return False
    return {"sha256": 64, "sha512": 128}.get(algorithm, len(hex_part)) == len(hex_part)


def is_registry(text):
    host, sep, port = text.partition(":")
    if ":" in port or not host:
        return False
    if sep and not (port.isdigit() and 1 <= int(port) <= 65535):
        return False
    return all(HOST_LABEL.fullmatch(label) for label in host.split("."))


def parse_image(text):
    """(registry, repository, tag, digest) by the distribution `reference` grammar, as ImageReference."""
    if not text:
        raise ImageError("is empty")
    remainder, digest = text, None
    if "@" in remainder:
        remainder, candidate = remainder.split("@", 1)
        if not is_digest(candidate):
            raise ImageError(f"has an invalid digest '{candidate}' (expected algorithm:hex, e.g. sha256:<64 hex>)")
        digest = candidate
    tag = None
    colon, slash = remainder.rfind(":"), remainder.rfind("/")
    if colon >= 0 and colon > slash:
        candidate = remainder[colon + 1:]
        if not TAG.fullmatch(candidate):
            raise ImageError(f"has an invalid tag '{candidate}'")
        tag, remainder = candidate, remainder[:colon]
    if len(remainder) > 255:
        raise ImageError("is longer than 255 characters")
    if not remainder:
        raise ImageError("has an invalid repository '' (lowercase letters, digits and separators)")
    components = remainder.split("/")
    registry = "docker.io"
    first = components[0]
    if len(components) > 1 and ("." in first or ":" in first or first == "localhost"):
        if not is_registry(first):
            raise ImageError(f"has an invalid registry '{first}'")
        registry = first
        components = components[1:]
    if not all(PATH_COMPONENT.fullmatch(component) for component in components):
        raise ImageError(f"has an invalid repository '{'/'.join(components)}' (lowercase letters, digits and separators)")
    if registry == "docker.io" and len(components) == 1:
        components.insert(0, "library")
    return registry, "/".join(components), tag, digest


def is_health_url(text):
    if len(text) > 2048:
        return False
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def is_label_key(key):
    parts = key.split("/")
    if len(parts) == 1:
        return bool(LABEL_NAME.fullmatch(parts[0]))
    if len(parts) == 2:
        prefix, name = parts
        return 1 <= len(prefix) <= 253 and all(DNS_LABEL.fullmatch(p) for p in prefix.split(".")) \
            and bool(LABEL_NAME.fullmatch(name))
    return False


class DeploymentRequest(BaseModel):
    """The body of POST /v1/deployments: unknown fields and wrong types are refused (strict)."""
    model_config = ConfigDict(extra="forbid", strict=True)
    service: str
    image: str
    environment: str
    strategy: Optional[str] = None
    replicas: Optional[int] = None
    health_url: Optional[str] = None
    labels: Optional[dict[str, str]] = None


def validate(body: DeploymentRequest):
    """The spec, or Refusal 422 listing every invalid field, then the policy's violations."""
    errors = []
    if not DNS_LABEL.fullmatch(body.service):
        errors.append({"field": "service", "message": "must be a DNS label: 1-63 lowercase letters, digits or '-', "
                                                      "starting and ending with a letter or digit"})
    image = None
    if len(body.image) > 512:
        errors.append({"field": "image", "message": "must be at most 512 characters"})
    else:
        try:
            image = parse_image(body.image)
        except ImageError as error:
            errors.append({"field": "image", "message": f"is not a valid OCI image reference: it {error}"})
    if body.environment not in ENVIRONMENTS:
        errors.append({"field": "environment", "message": "must be one of " + ", ".join(ENVIRONMENTS)})
    strategy = body.strategy if body.strategy is not None else "rolling"
    if strategy not in STRATEGIES:
        errors.append({"field": "strategy", "message": "must be one of " + ", ".join(STRATEGIES)})
    replicas = body.replicas if body.replicas is not None else 1
    if not 1 <= replicas <= 100:
        errors.append({"field": "replicas", "message": "must be from 1 to 100"})
    if body.health_url is not None and not is_health_url(body.health_url):
        errors.append({"field": "health_url",
                       "message": "must be an absolute http or https URL of at most 2048 characters"})
    labels = body.labels or {}
    if len(labels) > 32:
        errors.append({"field": "labels", "message": "must have at most 32 entries"})
    for key in sorted(labels):
        value = labels[key]
        if not is_label_key(key):
            errors.append({"field": f"labels.{key}", "message": "is not a valid label key: an optional DNS prefix and "
                                                               "'/', then 1-63 letters, digits, '-', '_' or '.'"})
        elif value and not LABEL_NAME.fullmatch(value):
            errors.append({"field": f"labels.{key}", "message": "has an invalid value: at most 63 letters, digits, "
                                                               "'-', '_' or '.', starting and ending with a letter or digit"})
    if errors:
        raise Refusal(422, "validation_failed", "The request body is not valid.", extra={"errors": errors})
    registry, repository, tag, digest = image
    canonical = f"{registry}/{repository}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    violations = []
    if body.environment == "production" and digest is None:
        violations.append({"rule": "production-requires-digest",
                           "message": f"production deployments must pin the image by digest; '{canonical}' has none"})
    if body.environment != "development" and digest is None and (tag is None or tag == "latest"):
        violations.append({"rule": "no-latest-outside-development",
                           "message": f"{body.environment} deployments must name a tag other than 'latest' (or a digest); "
                                      f"'{canonical}' has {'no tag' if tag is None else repr('latest')}"})
    if violations:
        raise Refusal(422, "policy_violation", "The deployment violates the deployment policy.",
                      extra={"violations": violations})
    return image, strategy, replicas, labels


# ---------------------------------------------------------------------------------------------------
# Rows to the contract's JSON (ContractConversions of code-api; absent optionals are left out)


def deployment_json(row):
    (seq, id_, service, image, registry, repository, tag, digest, environment, strategy, replicas, health_url,
     labels, status, attempt, error, cancel_requested, lease_owner, lease_expires_at, created_by, _key, _hash,
     created_at, updated_at, started_at, finished_at, _failures, _releases, _trace) = row
    image_ref = {"registry": registry, "repository": repository}
    if tag is not None:
        image_ref["tag"] = tag
    if digest is not None:
        image_ref["digest"] = digest
    body = {"id": id_, "service": service, "image": image, "image_ref": image_ref, "environment": environment,
            "strategy": strategy, "replicas": replicas, "labels": json.loads(labels), "status": status,
            "attempt": attempt, "cancel_requested": cancel_requested != 0, "created_at": iso(created_at),
            "updated_at": iso(updated_at)}
    for name, value in (("health_url", health_url), ("error", error), ("lease_owner", lease_owner),
                        ("lease_expires_at", iso(lease_expires_at)), ("created_by", created_by),
                        ("started_at", iso(started_at)), ("finished_at", iso(finished_at))):
        if value is not None:
            body[name] = value
    return body


def base36(number):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, remainder = divmod(number, 36)
        text = digits[remainder] + text
        if number == 0:
            return text


CURSOR = re.compile(r"[0-9a-z]{1,12}")

# ---------------------------------------------------------------------------------------------------
# The application

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.exception_handler(Refusal)
async def refusal_handler(request: Request, refusal: Refusal):
    request_id = getattr(request.state, "request_id", None) or request_id_of(request)
    return problem(refusal.status, refusal.code, refusal.detail, request_id, extra=refusal.extra,
                   headers=refusal.headers)


@app.exception_handler(RequestValidationError)
async def invalid_request_handler(request: Request, error: RequestValidationError):
    request_id = getattr(request.state, "request_id", None) or request_id_of(request)
    errors = [{"field": ".".join(str(part) for part in item.get("loc", ())[1:]) or "body", "message": item.get("msg", "")}
              for item in error.errors()]
    return problem(400, "invalid_body", "The request body could not be read.", request_id, extra={"errors": errors})


def begin(request: Request):
    """The request's id (kept for the problem handlers); every response carries it, as code-api's do.
    Done in the handlers rather than in an `@app.middleware("http")`, whose extra task per request would
    make the peer slower than it needs to be."""
    request_id = request.state.request_id = request_id_of(request)
    return request_id


@app.get("/health/live")
async def live(request: Request):
    return JSONResponse({"status": "ok", "service": SERVICE, "version": VERSION},
                        headers={"X-Request-ID": request_id_of(request)})


@app.get("/v1/deployments/{deployment_id}")
async def get_deployment(deployment_id: str, request: Request):
    request_id = begin(request)
    authenticate(request, "viewer")
    row = db().execute(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
    if row is None:
        raise Refusal(404, "not_found", f"Deployment {deployment_id} does not exist.")
    return JSONResponse(deployment_json(row), headers={"X-Request-ID": request_id})


@app.get("/v1/deployments")
async def list_deployments(request: Request, limit: Optional[int] = None, cursor: Optional[str] = None,
                           status: Optional[str] = None, service: Optional[str] = None,
                           environment: Optional[str] = None):
    request_id = begin(request)
    authenticate(request, "viewer")
    errors, conditions, parameters = [], [], []
    filters = [
        ("status", status, lambda value: value in STATUSES, "must be one of " + ", ".join(STATUSES)),
        ("service", service, lambda value: DNS_LABEL.fullmatch(value), "must be a DNS label"),
        ("environment", environment, lambda value: value in ENVIRONMENTS, "must be one of " + ", ".join(ENVIRONMENTS)),
    ]
    for column, value, valid, message in filters:
        if value is None:
            continue
        if valid(value):
            conditions.append(f"{column} = ?")
            parameters.append(value)
        else:
            errors.append({"field": column, "message": message})
    if limit is None:
        limit = 20
    elif not 1 <= limit <= 100:
        errors.append({"field": "limit", "message": "must be an integer from 1 to 100"})
        limit = 20
    if cursor:
        if CURSOR.fullmatch(cursor):
            conditions.append("seq < ?")
            parameters.append(int(cursor, 36))
        else:
            errors.append({"field": "cursor", "message": "is not a cursor this API returned"})
    if errors:
        raise Refusal(400, "invalid_parameter", "Some query parameters are not valid.", extra={"errors": errors})
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    rows = db().execute(f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments {where} ORDER BY seq DESC LIMIT ?",
                        (*parameters, limit + 1)).fetchall()
    shown = rows[:limit]
    page = {"items": [deployment_json(row) for row in shown]}
    if len(rows) > limit and shown:
        page["next_cursor"] = base36(shown[-1][0])
    return JSONResponse(page, headers={"X-Request-ID": request_id})


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def audit(connection, key_id, target, status, request_id, client):
    outcome = "succeeded" if 200 <= status < 400 else "denied" if status == 403 else "failed"
    connection.execute(
        "INSERT INTO audit_log (at, key_id, action, target, outcome, status, request_id, method, path, client) "
        "VALUES (?, ?, 'deployment.create', ?, ?, ?, ?, 'POST', '/v1/deployments', ?)",
        (now_ms(), key_id, target, outcome, status, request_id, client))


def audit_alone(key_id, status, request_id, client):
    connection = db()
    connection.execute("BEGIN IMMEDIATE")
    try:
        audit(connection, key_id, None, status, request_id, client)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


CLIENT_LABEL = re.compile(r"[A-Za-z0-9.:_-]{1,64}")


@app.post("/v1/deployments", status_code=201)
async def create_deployment(body: DeploymentRequest, request: Request):
    request_id = begin(request)
    key_id = authenticate(request, "operator")
    client = request.headers.get("x-code-client")
    client = client if client and CLIENT_LABEL.fullmatch(client) else None
    idempotency_key = request.headers.get("idempotency-key")
    try:
        if idempotency_key is not None and not IDEMPOTENCY_KEY.fullmatch(idempotency_key):
            raise Refusal(400, "invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters.")
        (registry, repository, tag, digest), strategy, replicas, labels = validate(body)
    except Refusal as refusal:
        audit_alone(key_id, refusal.status, request_id, client)
        raise
    request_hash = hashlib.sha256(body.model_dump_json().encode()).hexdigest() if idempotency_key else None
    deployment_id = time_ordered_id("dep_")
    created_at = now_ms()
    connection = db()
    connection.execute("BEGIN IMMEDIATE")
    try:
        row = connection.execute(
            f"INSERT INTO deployments (id, service, image, image_registry, image_repository, image_tag, image_digest, "
            f"environment, strategy, replicas, health_url, labels, status, attempt, cancel_requested, created_by, "
            f"idempotency_key, request_hash, created_at, updated_at, trace_parent) "
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, 0, ?, ?, ?, ?, ?, NULL) "
            f"ON CONFLICT (created_by, idempotency_key) DO NOTHING RETURNING {DEPLOYMENT_COLUMNS}",
            (deployment_id, body.service, body.image, registry, repository, tag, digest, body.environment, strategy,
             replicas, body.health_url, json.dumps(labels, sort_keys=True, separators=(",", ":")), key_id,
             idempotency_key, request_hash, created_at, created_at)).fetchone()
        replayed = row is None
        if replayed:
            row = connection.execute(
                f"SELECT {DEPLOYMENT_COLUMNS} FROM deployments WHERE created_by = ? AND idempotency_key = ?",
                (key_id, idempotency_key)).fetchone()
            if row[21] != request_hash:
                audit(connection, key_id, None, 409, request_id, client)
                connection.execute("COMMIT")
                raise Refusal(409, "idempotency_key_reused",
                              f"Idempotency-Key was used for a different request (deployment {row[1]}).")
        else:
            connection.execute(
                "INSERT INTO deployment_events (deployment_id, at, attempt, worker_id, step, kind, outcome, duration_ms, "
                "message) VALUES (?, ?, 0, NULL, 'queue', 'info', NULL, NULL, ?)",
                (deployment_id, created_at, f"queued by {key_id}"))
        audit(connection, key_id, row[1], 201, request_id, client)
        connection.execute("COMMIT")
    except Refusal:
        raise
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    headers = {"Location": f"/v1/deployments/{row[1]}", "X-Request-ID": request_id}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(deployment_json(row), status_code=201, headers=headers)


# ---------------------------------------------------------------------------------------------------


def prepare(path, admin_key):
    """The schema and the admin key (CODE_ADMIN_KEY's bootstrap), before any worker starts."""
    connection = connect(path)
    connection.executescript(SCHEMA)
    digest = hashlib.sha256(admin_key.encode()).hexdigest()
    connection.execute(
        "INSERT INTO api_keys (id, name, role, prefix, secret_hash, created_at) VALUES (?, 'admin', 'admin', ?, ?, ?) "
        "ON CONFLICT (secret_hash) DO NOTHING",
        ("key_" + uuid.uuid4().hex[:20], admin_key[:12], digest, now_ms()))
    connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--database", required=True)
    parser.add_argument("--admin-key", default=os.environ.get("PEER_ADMIN_KEY"))
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    if not args.admin_key or not SECRET_SHAPE.fullmatch(args.admin_key):
        parser.error("--admin-key (or PEER_ADMIN_KEY) must be a key of code-api's shape: code_ and 43+ characters")
    database = os.path.abspath(args.database)
    prepare(database, args.admin_key)
    os.environ["PEER_DATABASE"] = database
    import uvicorn
    uvicorn.run("fastapi_app:app", host=args.host, port=args.port, workers=args.workers, loop="uvloop",
                http="httptools", log_level="warning", access_log=False, app_dir=os.path.dirname(os.path.abspath(__file__)))


if __name__ == "__main__":
    main()
