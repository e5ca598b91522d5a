"""The monitoring overlay (compose/compose.monitoring.yaml) on the base stack: Prometheus finds every
service of services.json by itself, and after a short workload (deployments through the API, 404s,
401s and 422s, one MCP session) every PromQL expression of the rules and of the Grafana dashboard
evaluates without error against the live Prometheus, and every dashboard panel returns data.

Prometheus scrapes every 5 s here (PROMETHEUS_SCRAPE_INTERVAL); the dashboard's `$__rate_interval`
is replaced by 1m, what Grafana computes for a 15 s scrape interval (4 x scrape interval), and `$job`
by each service in turn (the service row repeats over it). Every wait is bounded."""
from __future__ import annotations

import json
import re
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from conftest import reported

from . import workload
from .stacks import ROOT, SERVICE_LIST, SERVICES, free_port, inspect, port_variable, run, start_stack, stop_stack, wait_for

MONITORING = ROOT / "compose" / "monitoring"
RULE_FILES = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
SCRAPE_SECONDS = 5
RATE_INTERVAL = "1m"
JOBS = {service["name"] for service in SERVICE_LIST}


@pytest.fixture(scope="module")
def figures():
    return reported("monitoring")


@pytest.fixture(scope="module")
def monitored(docker_engine, figures):
    # The Prometheus image: pulled, or built from Debian's prometheus package (idempotent, ~0.3 s when present).
    run([str(ROOT / "scripts" / "ensure-base-images.sh"), "--prometheus"], timeout=600)
    env = {port_variable(service): str(free_port()) for service in SERVICE_LIST}
    env.update({"PROMETHEUS_PORT": str(free_port()), "PROMETHEUS_SCRAPE_INTERVAL": f"{SCRAPE_SECONDS}s"})
    stack = start_stack("code-e2e-monitoring", ["monitoring"], env)
    figures.append(f"up --wait of base + monitoring: {stack.up_seconds:.1f} s")
    try:
        stack.prometheus = stack.published("prometheus", 9090)
        yield stack
    finally:
        stop_stack(stack)


def query(prometheus: str, expr: str) -> dict:
    """An instant query; returns Prometheus's answer (status, data or error) whatever the HTTP status."""
    url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, payload, _ = workload.request("GET", url, timeout=15)
    assert isinstance(payload, dict), (status, payload)
    return payload


def targets(prometheus: str) -> list[dict]:
    status, payload, _ = workload.request("GET", f"{prometheus}/api/v1/targets?state=active", timeout=15)
    workload.expect(status, 200, "GET /api/v1/targets", payload)
    return payload["data"]["activeTargets"]


def rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("record") or rule["alert"], rule["expr"]))
    return found


def panel_queries() -> list[tuple[str, str, str, str | None]]:
    """(dashboard, panel title, expr, the variable its row repeats over) of every query of every panel."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())

        def walk(panels, repeat=None):
            for panel in panels:
                if panel.get("type") == "row":
                    repeat = panel.get("repeat")
                    walk(panel.get("panels") or [], repeat)
                    continue
                for target in panel.get("targets") or []:
                    found.append((dashboard["title"], panel["title"], target["expr"], repeat))

        walk(dashboard["panels"])
    return found


def substitute(expr: str, job: str | None) -> str:
    expr = expr.replace("$__rate_interval", RATE_INTERVAL)
    if job is not None:
        # Service names are plain (a-z, 0-9, -): nothing to escape in the regex matcher.
        assert re.fullmatch(r"[a-z][a-z0-9-]*", job), job
        expr = expr.replace("$job", job)
    assert "$" not in expr.replace("$labels", ""), f"unsubstituted variable in {expr}"
    return expr


@pytest.fixture(scope="module")
def after_workload(monitored, figures):
    """Every target discovered and up, then a short workload, then two scrapes of every target."""
    started = time.monotonic()
    wait_for(lambda: {t["labels"]["job"] for t in targets(monitored.prometheus) if t["health"] == "up"} >= JOBS | {"prometheus"},
             timeout=60, interval=1, what="every service discovered and scraped")
    figures.append(f"every target up {time.monotonic() - started:.1f} s after up --wait")
    started = time.monotonic()
    api_url = monitored.published("api", 8000)
    admin = monitored.secret("admin_key")
    workload.api_flow(api_url, admin)
    api = workload.API(api_url, admin)
    created = [api.create(replicas=1) for _ in range(3)]
    for deployment in created:
        api.wait(deployment["id"], timeout=60)
    # code-worker's own route (operator key, and once without: 401).
    workload.worker_status(monitored.published("worker", 8001), monitored.secret("mcp_api_key"))
    for _ in range(5):
        api.call("GET", "/v1/deployments/nope", wanted=404)
        api.call("GET", "/v1/deployments", key="code_wrong", wanted=401)
    workload.mcp_flow(monitored.published("mcp", 3000) + "/mcp", monitored.secret("mcp_auth_token"), timeout=60)
    figures.append(f"workload (API flow, 3 deployments, worker status, 10 errors, one MCP session): {time.monotonic() - started:.1f} s")
    finished = time.time()

    def scraped_twice():
        # lastScrape is the start of the last scrape: two more scrapes of every target after the workload.
        return all(_timestamp(t["lastScrape"]) >= finished + SCRAPE_SECONDS for t in targets(monitored.prometheus))

    wait_for(scraped_twice, timeout=6 * SCRAPE_SECONDS, interval=1, what="two scrapes after the workload")
    return monitored


def _timestamp(rfc3339: str) -> float:
    from datetime import datetime
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", rfc3339.replace("Z", "+00:00"))).timestamp()


def test_every_service_of_services_json_is_a_target_and_up(after_workload, figures):
    found = targets(after_workload.prometheus)
    assert {t["labels"]["job"] for t in found} == JOBS | {"prometheus"}, found
    down = [(t["labels"], t["lastError"]) for t in found if t["health"] != "up"]
    assert not down, down
    # One target per running container, on the metrics port of the compose network.
    for service, binary in SERVICES.items():
        assert [t["labels"]["instance"].endswith(":9090") for t in found if t["labels"]["job"] == binary] == [True], binary
    answer = query(after_workload.prometheus, "up")
    assert answer["status"] == "success" and all(sample["value"][1] == "1" for sample in answer["data"]["result"]), answer
    figures.append(f"targets: {len(found)} ({', '.join(sorted(t['labels']['job'] for t in found))}), all up")


def test_every_rule_expression_evaluates_against_the_live_prometheus(after_workload, figures):
    expressions = rule_expressions()
    assert len(expressions) >= 20, expressions
    errors, with_data = [], 0
    for name, expr in expressions:
        answer = query(after_workload.prometheus, expr)
        if answer.get("status") != "success":
            errors.append((name, answer.get("error")))
        elif answer["data"]["result"]:
            with_data += 1
    assert not errors, errors
    # Prometheus loaded the same rules and evaluates them without error.
    status, payload, _ = workload.request("GET", f"{after_workload.prometheus}/api/v1/rules", timeout=15)
    loaded = [rule for group in payload["data"]["groups"] for rule in group["rules"]]
    assert len(loaded) == len(expressions), (len(loaded), len(expressions))
    unhealthy = [(rule["name"], rule.get("lastError")) for rule in loaded if rule["health"] == "err"]
    assert not unhealthy, unhealthy
    # CodeMCPSessionsRejected relies on code-mcp labelling its endpoint route="/mcp".
    answer = query(after_workload.prometheus, 'http_requests_total{job="code-mcp", route="/mcp"}')
    assert answer["data"]["result"], "no http_requests_total{route=\"/mcp\"} of code-mcp after the MCP session"
    firing = sorted({rule["name"] for rule in loaded if rule.get("type") == "alerting" and rule.get("state") == "firing"})
    figures.append(f"rule expressions: {len(expressions)} evaluate without error ({with_data} with data now); "
                   f"firing after the workload: {firing or 'none'}")


def test_every_dashboard_panel_evaluates_and_returns_data(after_workload, figures):
    queries = panel_queries()
    assert queries, "no dashboard panel"
    errors, empty, count = [], [], 0
    for dashboard, title, expr, repeat in queries:
        # The service row repeats over $job: each panel of it for each service.
        for job in (sorted(JOBS) if repeat == "job" or "$job" in expr else [None]):
            count += 1
            answer = query(after_workload.prometheus, substitute(expr, job))
            if answer.get("status") != "success":
                errors.append((dashboard, title, job, answer.get("error")))
            elif not answer["data"]["result"]:
                empty.append((dashboard, title, job, substitute(expr, job)))
    assert not errors, errors
    assert not empty, empty
    figures.append(f"dashboard: {len(queries)} panel queries, {count} evaluations (service row x {len(JOBS)} services), all with data")


def test_the_dashboard_variable_lists_every_service(after_workload):
    dashboard = json.loads(DASHBOARDS[0].read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "job")
    match = re.fullmatch(r"label_values\((.*), job\)", variable["definition"])
    answer = query(after_workload.prometheus, f"group by (job) ({match.group(1)})")
    assert {sample["metric"]["job"] for sample in answer["data"]["result"]} == JOBS, answer


def test_prometheus_runs_hardened(monitored):
    """As the other containers: read-only root, no capability, no new privileges, nobody, limits, a
    noexec /tmp, its port on 127.0.0.1 only; Docker's default seccomp profile (not unconfined)."""
    config = inspect(monitored.container("prometheus"))
    host = config["HostConfig"]
    assert host["ReadonlyRootfs"] is True and host["CapDrop"] == ["ALL"] and not host["CapAdd"], host
    assert "no-new-privileges:true" in host["SecurityOpt"], host["SecurityOpt"]
    assert not any(option.startswith("seccomp") and "unconfined" in option for option in host["SecurityOpt"]), host["SecurityOpt"]
    assert config["Config"]["User"] == "65534:65534", config["Config"]["User"]
    assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0, host
    assert "noexec" in host["Tmpfs"]["/tmp"] and "nosuid" in host["Tmpfs"]["/tmp"], host["Tmpfs"]
    bindings = [binding for bound in host["PortBindings"].values() for binding in bound]
    assert bindings and all(binding["HostIp"] == "127.0.0.1" for binding in bindings), bindings
