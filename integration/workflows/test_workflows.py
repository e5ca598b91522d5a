"""Properties of the GitHub Actions workflows that must not silently regress.

The workflows cannot run on this machine (GitHub is unreachable), so this suite checks them
statically, runs the parts that can run here (the services.json step with jq, the cosign scripts
with a stand-in cosign, the retention script under Node with a stand-in GitHub API and registry),
and runs actionlint and zizmor (offline) from the same virtual environment as pytest.

The services are not named here: services.json is the list (scripts/new-service.sh appends to it),
and the release, security-scan and retention workflows derive their matrix and package list from
it in a first job. The suite reads services.json with Python's json to know what that derivation
must produce.

Every property is a `check_*` function that returns a list of problems for a repository root.
`test_property` asserts the real repository has none; `test_check_can_fail` applies a small
breaking edit to a temporary copy of `.github/` (with services.json and docker/Dockerfile) for
each check and asserts the check notices, so no check can quietly turn into a no-op.

Run: .venv/bin/pytest -q integration/workflows
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from hashlib import sha256
from pathlib import Path
from typing import Callable, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
WORKFLOW_NAMES = {"ci", "release", "security-scan", "retention"}
# The workflows that take the services from services.json, and the job output each one uses.
SERVICE_LIST_OUTPUTS = {"release": "matrix", "security-scan": "matrix", "retention": "names"}
IMAGE_JOBS = (("release", "image"), ("security-scan", "image"))
MATRIX_FROM_LIST = "${{ fromJSON(needs.services.outputs.matrix) }}"
# The build arguments of docker/Dockerfile's `service` target that come from the matrix entry.
SERVICE_BUILD_ARGS = {
    "SERVICE": "${{ matrix.service }}",
    "PORT": "${{ matrix.port }}",
    "DESCRIPTION": "${{ matrix.description }}",
}
SHA_PIN = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+(?:/[\w./-]+)?)@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"#\s*(?P<version>v?\d+\.\d+\.\d+)\s*$")
OIDC_ISSUER = "https://token.actions.githubusercontent.com"

Problems = list[str]


# --------------------------------------------------------------------------- helpers


def load_workflows(root: Path) -> dict[str, dict]:
    workflows = {}
    for path in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        workflows[path.stem] = yaml.safe_load(path.read_text())
    return workflows


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return {name: None for name in on}
    return on or {}


def jobs(workflow: dict) -> dict[str, dict]:
    return workflow.get("jobs") or {}


def steps(job: dict) -> list[dict]:
    return job.get("steps") or []


def action_of(step: dict) -> str:
    return str(step.get("uses", "")).split("@", 1)[0]


def steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if action_of(s) == action]


def all_jobs(root: Path) -> Iterator[tuple[str, str, dict]]:
    for wf_name, wf in load_workflows(root).items():
        for job_name, job in jobs(wf).items():
            yield wf_name, job_name, job


def with_(step: dict) -> dict:
    return step.get("with") or {}


def lines(value) -> list[str]:
    return [ln.strip() for ln in str(value or "").splitlines() if ln.strip()]


def job_named(root: Path, workflow: str, job: str) -> dict:
    wf = load_workflows(root).get(workflow) or {}
    return jobs(wf).get(job) or {}


def run_scripts(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def matrix_values(job: dict, key: str) -> list:
    return list(((job.get("strategy") or {}).get("matrix") or {}).get(key) or [])


def tool(name: str) -> Path:
    return VENV_BIN / name


def load_services(root: Path) -> list[dict]:
    """The entries of services.json, the one list of services."""
    return json.loads((root / "services.json").read_text())["services"]


def service_names(root: Path) -> list[str]:
    return [s["name"] for s in load_services(root)]


def expected_matrix(services: list[dict]) -> dict:
    """What the services job must output as `matrix` (computed here with Python's json)."""
    return {"include": [{"service": s["name"], "port": s["port"], "description": s["description"]} for s in services]}


def needs_of(job: dict) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def build_args(step: dict) -> dict[str, str]:
    args = {}
    for line in lines(with_(step).get("build-args")):
        key, _, value = line.partition("=")
        args[key] = value
    return args


# --------------------------------------------------------------------------- general rules


def check_workflows_present(root: Path) -> Problems:
    found = set(load_workflows(root))
    missing = WORKFLOW_NAMES - found
    return [f"missing workflow {name}.yml" for name in sorted(missing)]


def check_no_pull_request_target(root: Path) -> Problems:
    return [
        f"{name}: uses pull_request_target"
        for name, wf in load_workflows(root).items()
        if "pull_request_target" in triggers(wf)
    ]


def check_top_level_permissions_read_only(root: Path) -> Problems:
    problems = []
    for name, wf in load_workflows(root).items():
        perms = wf.get("permissions", "missing")
        if perms not in ({}, {"contents": "read"}):
            problems.append(f"{name}: top-level permissions must be {{}} or contents: read, got {perms!r}")
    return problems


def _signs(job: dict) -> bool:
    return "cosign sign" in run_scripts(job)


def _pushes_to_ghcr(job: dict) -> bool:
    login = any(with_(s).get("registry") == "ghcr.io" for s in steps_using(job, "docker/login-action"))
    push = any(with_(s).get("push") is True for s in steps_using(job, "docker/build-push-action"))
    return login and push


def _tags_in_ghcr(job: dict) -> bool:
    """Adds tags to an already-pushed digest (the release gate's publish and feature jobs)."""
    login = any(with_(s).get("registry") == "ghcr.io" for s in steps_using(job, "docker/login-action"))
    return login and "docker buildx imagetools create" in run_scripts(job)


def _manages_packages(wf_name: str, job: dict) -> bool:
    return wf_name == "retention" and bool(steps_using(job, "actions/github-script"))


def _uploads_sarif(job: dict) -> bool:
    return bool(steps_using(job, "github/codeql-action/upload-sarif"))


WRITE_JUSTIFICATION: dict[str, Callable[[str, dict], bool]] = {
    "id-token": lambda wf, job: _signs(job),
    "packages": lambda wf, job: _pushes_to_ghcr(job) or _tags_in_ghcr(job) or _manages_packages(wf, job),
    "security-events": lambda wf, job: _uploads_sarif(job),
}


def check_job_permissions_least_privilege(root: Path) -> Problems:
    """Every job declares its permissions; each write scope is justified by what the job does."""
    problems = []
    for wf_name, job_name, job in all_jobs(root):
        where = f"{wf_name}/{job_name}"
        perms = job.get("permissions")
        if not isinstance(perms, dict):
            problems.append(f"{where}: no explicit permissions mapping ({perms!r})")
            continue
        for scope, level in perms.items():
            if level == "write":
                justified = WRITE_JUSTIFICATION.get(scope)
                if justified is None or not justified(wf_name, job):
                    problems.append(f"{where}: {scope}: write is not needed by this job")
            elif level not in ("read", "none"):
                problems.append(f"{where}: {scope}: unexpected level {level!r}")
        if _signs(job) and perms.get("id-token") != "write":
            problems.append(f"{where}: signs with cosign but lacks id-token: write")
        if _uploads_sarif(job) and perms.get("security-events") != "write":
            problems.append(f"{where}: uploads SARIF but lacks security-events: write")
    return problems


def check_timeouts(root: Path) -> Problems:
    problems = []
    for wf_name, job_name, job in all_jobs(root):
        minutes = job.get("timeout-minutes")
        if not isinstance(minutes, int) or not 1 <= minutes <= 360:
            problems.append(f"{wf_name}/{job_name}: timeout-minutes must be 1..360, got {minutes!r}")
    return problems


def _uses_lines(root: Path) -> Iterator[tuple[str, int, str, str]]:
    """(file, line number, uses value, rest of line) for every `uses:` in workflows and actions."""
    for path in sorted((root / ".github").rglob("*.y*ml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r"^\s*(?:-\s+)?uses:\s*(?P<value>[^\s#]+)(?P<rest>.*)$", line)
            if m:
                yield str(path.relative_to(root)), number, m["value"].strip("'\""), m["rest"]


def check_actions_pinned(root: Path) -> Problems:
    problems = []
    seen = 0
    for file, number, value, rest in _uses_lines(root):
        seen += 1
        if value.startswith("./"):
            continue
        if value.startswith("docker://"):
            if "@sha256:" not in value:
                problems.append(f"{file}:{number}: docker action {value} not pinned by digest")
            continue
        if not SHA_PIN.match(value):
            problems.append(f"{file}:{number}: {value} is not pinned to a full 40-hex commit SHA")
        if not VERSION_COMMENT.search(rest):
            problems.append(f"{file}:{number}: {value} lacks a '# vX.Y.Z' version comment")
    parsed = sum(1 for _, _, job in all_jobs(root) for s in steps(job) if "uses" in s)
    if parsed != seen:
        problems.append(f"line scan saw {seen} uses: but YAML has {parsed}; unusual formatting?")
    return problems


def check_pins_consistent(root: Path) -> Problems:
    """One action, one commit and one version comment across all workflows."""
    pins: dict[str, set[tuple[str, str]]] = {}
    for _, _, value, rest in _uses_lines(root):
        m = SHA_PIN.match(value)
        v = VERSION_COMMENT.search(rest)
        if m:
            repo = "/".join(m["action"].split("/")[:2])
            pins.setdefault(repo, set()).add((m["sha"], v["version"] if v else ""))
    return [f"{repo} pinned inconsistently: {sorted(p)}" for repo, p in pins.items() if len(p) > 1]


def check_checkout_without_persisted_credentials(root: Path) -> Problems:
    problems = []
    for wf_name, job_name, job in all_jobs(root):
        for step in steps_using(job, "actions/checkout"):
            if with_(step).get("persist-credentials") is not False:
                problems.append(f"{wf_name}/{job_name}: checkout without persist-credentials: false")
    return problems


def check_concurrency(root: Path) -> Problems:
    problems = []
    wfs = load_workflows(root)
    expected_cancel = {"ci": True, "security-scan": True, "release": False, "retention": False}
    for name, cancel in expected_cancel.items():
        conc = (wfs.get(name) or {}).get("concurrency")
        if not isinstance(conc, dict) or not conc.get("group"):
            problems.append(f"{name}: no concurrency group")
            continue
        if conc.get("cancel-in-progress") is not cancel:
            problems.append(f"{name}: cancel-in-progress must be {cancel}, got {conc.get('cancel-in-progress')!r}")
    for name in ("ci", "security-scan", "release"):
        group = str(((wfs.get(name) or {}).get("concurrency") or {}).get("group", ""))
        if "github.ref" not in group:
            problems.append(f"{name}: concurrency group should be per ref/pull request: {group!r}")
    return problems


def check_no_expressions_in_run(root: Path) -> Problems:
    """`${{ }}` in a run: script is template injection waiting to happen; values go through env."""
    problems = []
    for wf_name, job_name, job in all_jobs(root):
        for step in steps(job):
            if "${{" in str(step.get("run", "")):
                problems.append(f"{wf_name}/{job_name}/{step.get('name')}: expression inside run:")
    return problems


# --------------------------------------------------------------------------- ci.yml


def check_ci_triggers(root: Path) -> Problems:
    on = triggers(load_workflows(root).get("ci") or {})
    problems = []
    if "pull_request" not in on:
        problems.append("ci: not run on pull_request")
    if "main" not in ((on.get("push") or {}).get("branches") or []):
        problems.append("ci: not run on pushes to main")
    return problems


def check_ci_swift_job(root: Path) -> Problems:
    job = job_named(root, "ci", "swift")
    problems = []
    # Both images by digest, from the lock file through the base-images job (check_base_image_lock).
    pins = _lock_pins(root)
    container = job.get("container")
    image = container.get("image") if isinstance(container, dict) else container
    if image != "${{ needs.base-images.outputs.swift_image }}" or "base-images" not in needs_of(job):
        problems.append(f"ci/swift: container must be the pinned swift image (needs.base-images), got {image!r}")
    if not pins.get("swift_image", "").startswith("swift:6.3-bookworm@sha256:"):
        problems.append(f"ci/swift: the lock file must pin swift:6.3-bookworm, pins {pins.get('swift_image')!r}")
    services = job.get("services") or {}
    pg = services.get("postgres") or {}
    if pg.get("image") != "${{ needs.base-images.outputs.postgres_image }}":
        problems.append(f"ci/swift: postgres service must be the pinned image (needs.base-images), got {pg.get('image')!r}")
    if not pins.get("postgres_image", "").startswith("postgres:16"):
        problems.append(f"ci/swift: the lock file must pin postgres:16, pins {pins.get('postgres_image')!r}")
    url = str((job.get("env") or {}).get("CODE_TEST_POSTGRES_URL", ""))
    if not re.match(r"^postgres(ql)?://[^@]+@postgres:5432/\w+$", url):
        problems.append(f"ci/swift: CODE_TEST_POSTGRES_URL must reach the service host 'postgres': {url!r}")
    script = run_scripts(job)
    if not re.search(r"apt-get install -y\b.*\blibsqlite3-dev\b", script):
        problems.append("ci/swift: does not apt-get install -y libsqlite3-dev")
    if not re.search(r"^\s*make test-swift\s*$", script, re.M):
        problems.append("ci/swift: does not run make test-swift")
    caches = steps_using(job, "actions/cache")
    if not caches:
        problems.append("ci/swift: no actions/cache step")
    for step in caches:
        w = with_(step)
        if str(w.get("path", "")).strip() != ".build":
            problems.append(f"ci/swift: cache path must be .build, got {w.get('path')!r}")
        if "hashFiles('Package.swift')" not in str(w.get("key", "")):
            problems.append(f"ci/swift: cache key must hash Package.swift: {w.get('key')!r}")
        if "Package.resolved" in str(w.get("key", "")):
            problems.append("ci/swift: Package.resolved is not committed; do not key on it")
    return problems


def check_ci_lint_job(root: Path) -> Problems:
    job = job_named(root, "ci", "lint")
    problems = []
    if not re.search(r"^\s*make lint\s*$", run_scripts(job), re.M):
        problems.append("ci/lint: does not run make lint")
    pythons = steps_using(job, "actions/setup-python")
    env = load_workflows(root).get("ci", {}).get("env") or {}
    versions = {str(with_(s).get("python-version")).replace("${{ env.PYTHON_VERSION }}", str(env.get("PYTHON_VERSION"))) for s in pythons}
    if versions != {"3.11"}:
        problems.append(f"ci/lint: Python must be 3.11 via actions/setup-python, got {versions}")
    return problems


def check_ci_containers_job(root: Path) -> Problems:
    job = job_named(root, "ci", "containers")
    problems = []
    if not job.get("runs-on", "").startswith("ubuntu"):
        problems.append("ci/containers: needs a runner with Docker (ubuntu-*)")
    # As root (sudo keeping PATH): the hardening checks read /proc/<pid>/root and runc's bundles.
    if not re.search(r"^\s*sudo --preserve-env=PATH make test-containers\s*$", run_scripts(job), re.M):
        problems.append("ci/containers: does not run make test-containers as root (sudo --preserve-env=PATH)")
    return problems


def check_ci_kubernetes_job(root: Path) -> Problems:
    """The Kubernetes manifests' suite runs in CI (make test runs it with the integration suites; the
    GitHub CI runs no other integration suite, so it has a job of its own)."""
    job = job_named(root, "ci", "kubernetes")
    problems = []
    if not job.get("runs-on", "").startswith("ubuntu"):
        problems.append("ci/kubernetes: needs a runner with kubectl (ubuntu-*)")
    if not re.search(r"pytest\"? -q -p no:cacheprovider integration/kubernetes\s*$", run_scripts(job), re.M):
        problems.append("ci/kubernetes: does not run pytest on integration/kubernetes")
    return problems


# --------------------------------------------------------------------------- services.json -> workflows


def _list_step(job: dict) -> dict:
    """The step `id: list` of a services job: it reads services.json and writes the job outputs."""
    return next((s for s in steps(job) if s.get("id") == "list"), {})


def check_service_list_jobs(root: Path) -> Problems:
    """release, security-scan and retention each start with a read-only `services` job that reads
    services.json with one and the same step and hands the workflow what it needs as an output."""
    problems = []
    scripts = {}
    for wf_name, output in SERVICE_LIST_OUTPUTS.items():
        where = f"{wf_name}/services"
        job = job_named(root, wf_name, "services")
        if not job:
            problems.append(f"{where}: no job `services` that reads services.json")
            continue
        if job.get("permissions") != {"contents": "read"}:
            problems.append(f"{where}: permissions must be exactly contents: read, got {job.get('permissions')!r}")
        if needs_of(job):
            problems.append(f"{where}: must be a first job (needs nothing), needs {needs_of(job)}")
        if not steps_using(job, "actions/checkout"):
            problems.append(f"{where}: does not check out the repository (services.json)")
        script = str(_list_step(job).get("run", ""))
        if not re.search(r"\bjq\b", script) or "services.json" not in script or '>> "$GITHUB_OUTPUT"' not in script:
            problems.append(f"{where}: needs a step `id: list` that reads services.json with jq into $GITHUB_OUTPUT")
        scripts[wf_name] = script
        outputs = job.get("outputs") or {}
        if outputs.get(output) != f"${{{{ steps.list.outputs.{output} }}}}":
            problems.append(f"{where}: output {output} must be ${{{{ steps.list.outputs.{output} }}}}, got {outputs.get(output)!r}")
    if len(set(scripts.values())) > 1:
        problems.append(f"the services.json step differs between {sorted(scripts)}: keep one derivation")
    return problems


def check_no_hard_coded_services(root: Path) -> Problems:
    """No workflow names a service: adding one to services.json is all a new service needs."""
    names = service_names(root)
    if not names:
        return ["services.json lists no services"]
    problems = []
    for path in sorted((root / ".github" / "workflows").glob("*.y*ml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found = [n for n in names if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", line)]
            if found:
                problems.append(f"{path.relative_to(root)}:{number}: names {found}; take them from services.json")
    return problems


MATRIX_KEYS = {"service", "port", "description"}
MATRIX_REFERENCE = re.compile(r"\bmatrix\.([A-Za-z_][\w-]*)")


def check_image_matrix_from_service_list(root: Path) -> Problems:
    """The image jobs run once per entry of the services job's matrix (fromJSON), build the one
    `service` target with that entry's build arguments, and use no matrix key it does not have."""
    problems = []
    for wf_name, job_name in IMAGE_JOBS:
        where = f"{wf_name}/{job_name}"
        job = job_named(root, wf_name, job_name)
        if "services" not in needs_of(job):
            problems.append(f"{where}: must need the services job (its matrix comes from there)")
        strategy = job.get("strategy") or {}
        if strategy.get("matrix") != MATRIX_FROM_LIST:
            problems.append(f"{where}: matrix must be {MATRIX_FROM_LIST}, got {strategy.get('matrix')!r}")
        if strategy.get("fail-fast") is not False:
            problems.append(f"{where}: fail-fast must be false (one service must not cancel the others)")
        if "${{ matrix.service }}" not in str(job.get("name", "")):
            problems.append(f"{where}: the job name must show the service, got {job.get('name')!r}")
        build = _service_build(job)
        w = with_(build)
        if w.get("target") != "service":
            problems.append(f"{where}: must build the `service` target of docker/Dockerfile, got {w.get('target')!r}")
        if w.get("file") != "docker/Dockerfile" or w.get("context") != ".":
            problems.append(f"{where}: must build docker/Dockerfile with the repository root as context")
        args = build_args(build)
        for key, value in SERVICE_BUILD_ARGS.items():
            if args.get(key) != value:
                problems.append(f"{where}: build arg {key} must be {value}, got {args.get(key)!r}")
        # actionlint cannot type a matrix that comes from fromJSON: a misspelt key would be empty.
        unknown = set(MATRIX_REFERENCE.findall(json.dumps(job))) - MATRIX_KEYS
        if unknown:
            problems.append(f"{where}: uses matrix keys {sorted(unknown)}; the services job outputs {sorted(MATRIX_KEYS)}")
    return problems


def check_no_runtime_base_images(root: Path) -> Problems:
    """docker/Dockerfile assembles the runtime root file system itself, so each image job builds one
    image: no runtime base or libcurl overlay image first, no job-local registry to hand them over."""
    problems = []
    for wf_name, job_name in IMAGE_JOBS:
        where = f"{wf_name}/{job_name}"
        job = job_named(root, wf_name, job_name)
        if job.get("services"):
            problems.append(f"{where}: service containers {sorted(job['services'])}; no job-local registry is needed")
        builds = steps_using(job, "docker/build-push-action")
        if [s.get("id") for s in builds] != ["build"]:
            problems.append(f"{where}: must build the service image only, builds {[s.get('name') for s in builds]}")
        text = json.dumps(job)
        for stale in ("localhost:5000", "docker/runtime", "RUNTIME_IMAGE", "RUNTIME_CURL", "RUNTIME_BASE", "network=host"):
            if stale in text:
                problems.append(f"{where}: still refers to {stale}; docker/Dockerfile builds its runtime itself")
    return problems


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current = (current + stripped).strip()
        if current:
            word, _, rest = current.partition(" ")
            instructions.append((word.upper(), rest.strip()))
        current = ""
    return instructions


PUBLIC_BASE_IMAGE = re.compile(r"^(swift|debian):[\w.-]+$")


def check_dockerfile_service_target(root: Path) -> Problems:
    """What the image jobs rely on in docker/Dockerfile: a `service` target that takes SERVICE, PORT,
    DESCRIPTION, standing on the one `runtime` stage that every service image shares (the multi-call
    binary and its root file system; no per-service runtime, no RUNTIME argument), and
    no base image but public ones (SWIFT_IMAGE, DEBIAN_IMAGE, scratch), so nothing to build first."""
    path = root / "docker" / "Dockerfile"
    if not path.exists():
        return ["docker/Dockerfile is missing"]
    global_args: dict[str, str] = {}
    stages: dict[str, dict] = {}
    current: dict | None = None
    problems = []
    for word, rest in _dockerfile_instructions(path.read_text()):
        if word == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            image, name = (m[1], (m[2] or "").lower()) if m else (rest, "")
            resolved = image
            for arg, default in global_args.items():
                resolved = resolved.replace(f"${{{arg}}}", default).replace(f"${arg}", default)
            if not (resolved == "scratch" or resolved.lower() in stages or PUBLIC_BASE_IMAGE.match(resolved)):
                problems.append(f"docker/Dockerfile: FROM {image} is neither a stage nor a public image; "
                                f"a workflow would have to build it first")
            current = {"from": image, "args": set()}
            stages[name or f"#{len(stages)}"] = current
        elif word == "ARG":
            for token in shlex.split(rest):
                key, _, default = token.partition("=")
                if current is None:
                    global_args[key] = default
                else:
                    current["args"].add(key)
    service = stages.get("service")
    if service is None:
        return problems + ["docker/Dockerfile: no `service` target (FROM ... AS service)"]
    missing = {"SERVICE", "PORT", "DESCRIPTION"} - service["args"]
    if missing:
        problems.append(f"docker/Dockerfile: the service stage does not declare ARG {sorted(missing)}")
    if service["from"] != "runtime" or "runtime" not in stages:
        problems.append("docker/Dockerfile: the service stage must be FROM runtime (the stage every service image shares)")
    if "RUNTIME" in global_args or "RUNTIME" in service["args"]:
        problems.append("docker/Dockerfile: ARG RUNTIME is gone (every image shares one runtime); the workflows no longer pass it")
    return problems


def _run_list_step(script: str, services: object) -> tuple[int, dict[str, str], list[str], str]:
    """Runs a services.json step as GitHub would (`bash -e`, the default shell) in a directory that
    holds `services` as services.json; returns exit code, outputs, malformed output lines, log."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "services.json").write_text(services if isinstance(services, str) else json.dumps(services, indent=2))
        (tmpdir / "step.sh").write_text(script)
        output = tmpdir / "github_output"
        output.touch()
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-e", "step.sh"], cwd=tmpdir,
                              env={"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(output)},
                              capture_output=True, text=True, timeout=30)
        outputs, malformed = {}, []
        for line in output.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and re.fullmatch(r"[\w-]+", key):
                outputs[key] = value
            else:
                malformed.append(line)
        return proc.returncode, outputs, malformed, proc.stdout + proc.stderr


def check_service_list_behaviour(root: Path) -> Problems:
    """Runs each workflow's services.json step with jq, as the runner does, against services.json and
    edited lists: the outputs must be what Python's json makes of the list, and an entry that would
    break an image name or smuggle a build argument in must fail the step."""
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (apt-get install jq); the services.json step cannot be executed")
    services = load_services(root)
    taken = {s["name"] for s in services}
    fresh = [name for name in (f"code-extra{i}" for i in range(len(taken) + 2)) if name not in taken]
    # As scripts/new-service.sh appends one, and one without a needs key at all.
    generated = {"name": fresh[0], "port": 8002,
                 "description": f"{fresh[0]}: a CODE service generated from templates/service", "needs": []}
    accepted = [services, services + [generated, {"name": fresh[1], "port": 8003, "description": "no needs"}]]
    rejected = {
        "no services": [],
        "an upper-case name": [{**generated, "name": "Code-Extra"}],
        "a name ending in a newline": [{**generated, "name": fresh[0] + "\n"}],
        "a description with a newline (a build argument of its own)": [{**generated, "description": "x\nPORT=1"}],
        "a name listed twice": [generated, {**generated, "port": 8003}],
        "a port below 1024": [{**generated, "port": 80}],
        "a port that is a string": [{**generated, "port": "8002"}],
        "a fractional port": [{**generated, "port": 8002.5}],
    }
    problems = []
    for wf_name in SERVICE_LIST_OUTPUTS:
        script = str(_list_step(job_named(root, wf_name, "services")).get("run", ""))
        if not script:
            problems.append(f"{wf_name}: no services.json step to run")
            continue
        for entries in accepted:
            rc, outputs, malformed, log = _run_list_step(script, {"services": entries})
            if rc != 0 or malformed:
                problems.append(f"{wf_name}: the services.json step failed or wrote malformed output (exit {rc}, {malformed}): {log}")
                continue
            try:
                matrix = json.loads(outputs.get("matrix", ""))
            except ValueError:
                matrix = None
            if matrix != expected_matrix(entries):
                problems.append(f"{wf_name}: matrix {outputs.get('matrix')!r} != {json.dumps(expected_matrix(entries))}")
            names = " ".join(s["name"] for s in entries)
            if outputs.get("names") != names:
                problems.append(f"{wf_name}: names {outputs.get('names')!r} != {names!r}")
        for what, entries in rejected.items():
            rc, outputs, _, _ = _run_list_step(script, {"services": entries})
            if rc == 0 or outputs:
                problems.append(f"{wf_name}: the services.json step accepts {what} (exit {rc}, outputs {outputs})")
    return problems


# --------------------------------------------------------------------------- release.yml


def _release_job(root: Path) -> dict:
    return job_named(root, "release", "image")


def _step(job: dict, action: str) -> dict:
    found = steps_using(job, action)
    return found[0] if found else {}


def _service_build(job: dict) -> dict:
    """The docker/build-push-action step with id `build`: the service image itself."""
    found = [s for s in steps_using(job, "docker/build-push-action") if s.get("id") == "build"]
    return found[0] if found else {}


def check_release_triggers(root: Path) -> Problems:
    push = triggers(load_workflows(root).get("release") or {}).get("push") or {}
    problems = []
    if push.get("tags") != ["v*.*.*"]:
        problems.append(f"release: push tags must be ['v*.*.*'], got {push.get('tags')!r}")
    # main, and every other branch for feature images; Dependabot's branches get a read-only token.
    if push.get("branches") != ["**", "!dependabot/**"]:
        problems.append(f"release: push branches must be ['**', '!dependabot/**'], got {push.get('branches')!r}")
    return problems


def check_release_matrix(root: Path) -> Problems:
    """The per-service job's tooling (its matrix itself: check_image_matrix_from_service_list)."""
    job = _release_job(root)
    problems = []
    build = _service_build(job)
    if with_(build).get("file") != "docker/Dockerfile" or with_(build).get("context") != ".":
        problems.append("release: must build docker/Dockerfile with the repository root as context")
    for action in ("docker/setup-qemu-action", "docker/setup-buildx-action"):
        if not steps_using(job, action):
            problems.append(f"release: missing {action}")
    login = _step(job, "docker/login-action")
    if with_(login).get("registry") != "ghcr.io" or with_(login).get("password") != "${{ secrets.GITHUB_TOKEN }}":
        problems.append("release: must log in to ghcr.io with GITHUB_TOKEN")
    return problems


def check_release_platforms(root: Path) -> Problems:
    build = _service_build(_release_job(root))
    platforms = {p.strip() for p in str(with_(build).get("platforms", "")).split(",")}
    missing = {"linux/amd64", "linux/arm64"} - platforms
    problems = [f"release: platforms lack {sorted(missing)}"] if missing else []
    if with_(build).get("push") is not True:
        problems.append("release: build-push-action must push (to the staging tag)")
    return problems


def check_release_tag_rules(root: Path) -> Problems:
    """The release tags: the publish job applies them (after the gate) with the same metadata-action
    rules the image job bakes version and labels from; the build pushes the staging tag only."""
    job = _release_job(root)
    meta = _step(_publish_job(root), "docker/metadata-action")
    tags = lines(with_(meta).get("tags"))
    flavor = lines(with_(meta).get("flavor"))
    problems = []
    build_meta = with_(_step(job, "docker/metadata-action"))
    if (lines(build_meta.get("tags")), lines(build_meta.get("flavor"))) != (tags, flavor):
        problems.append("release: the image and publish jobs' metadata-action tags/flavor differ; keep one set of rules")
    for pattern in ("{{version}}", "{{major}}.{{minor}}", "{{major}}"):
        if f"type=semver,pattern={pattern}" not in tags:
            problems.append(f"release: no semver tag rule pattern={pattern}")
    if "latest=false" not in flavor:
        problems.append("release: flavor latest=false is needed so only releases get latest")
    latest = [t for t in tags if re.search(r"value=latest\b", t)]
    if len(latest) != 1 or "refs/tags/v" not in latest[0] or "enable=" not in latest[0]:
        problems.append(f"release: latest must be enabled only for v* tags: {latest}")
    elif "contains(github.ref_name, '-')" not in latest[0]:
        problems.append("release: latest must skip pre-release tags (v1.2.3-rc.1)")
    main_sha = [t for t in tags if t.startswith("type=sha") and "prefix=main-" in t]
    if len(main_sha) != 1 or "enable={{is_default_branch}}" not in main_sha[0]:
        problems.append(f"release: need type=sha,prefix=main- limited to the default branch: {main_sha}")
    short_sha = [t for t in tags if t.startswith("type=sha") and "prefix=sha-" in t]
    if len(short_sha) != 1 or "format=short" not in short_sha[0] or "github.ref_type == 'branch'" not in short_sha[0]:
        problems.append(f"release: need type=sha,prefix=sha-,format=short for branch builds: {short_sha}")
    build = _service_build(job)
    if with_(build).get("tags") != "${{ steps.image.outputs.name }}:${{ env.STAGING_TAG }}":
        problems.append(f"release: build must push the staging tag only, got {with_(build).get('tags')!r}")
    tag_step = next((s for s in steps(_publish_job(root)) if "docker buildx imagetools create" in str(s.get("run", ""))), {})
    if (tag_step.get("env") or {}).get("TAGS") != "${{ steps.meta.outputs.tags }}":
        problems.append("release: publish must add the metadata-action tags (env TAGS) with imagetools create")
    if with_(build).get("labels") != "${{ steps.meta.outputs.labels }}":
        problems.append("release: build must use the metadata-action labels")
    return problems


def check_release_labels(root: Path) -> Problems:
    """metadata-action's default title and description are the repository's; every image gets its
    own from the matrix entry, as labels and as manifest annotations."""
    job = _release_job(root)
    meta = with_(_step(job, "docker/metadata-action"))
    problems = []
    want = ["org.opencontainers.image.title=${{ matrix.service }}",
            "org.opencontainers.image.description=${{ matrix.description }}"]
    for key in ("labels", "annotations"):
        have = lines(meta.get(key))
        missing = [w for w in want if w not in have]
        if missing:
            problems.append(f"release: metadata-action {key} lack {missing}")
    build = with_(_service_build(job))
    if build.get("annotations") != "${{ steps.meta.outputs.annotations }}":
        problems.append("release: build must use the metadata-action annotations")
    return problems


def check_release_registry_cache(root: Path) -> Problems:
    w = with_(_service_build(_release_job(root)))
    ref = "ref=${{ steps.image.outputs.name }}:buildcache"
    problems = []
    if [line.strip() for line in str(w.get("cache-from", "")).splitlines() if line.strip()] != [f"type=registry,{ref}", f"type=registry,{ref}-branches"]:
        problems.append(f"release: cache-from must be the release and the branches' registry buildcache: {w.get('cache-from')!r}")
    # Only main and release tags write the release cache; other branches write their own.
    if w.get("cache-to") != "type=registry,ref=${{ steps.image.outputs.name }}:${{ env.CACHE_TAG }},mode=max":
        problems.append(f"release: cache-to must be the registry cache CACHE_TAG with mode=max: {w.get('cache-to')!r}")
    # Debian's packages (the runtime's, curl's and OpenSSL's, linked into the binary) are taken
    # anew by every release, not from a cached layer.
    if set(str(w.get("no-cache-filters", "")).split(",")) != {"runtime-assemble", "libcurl-static"}:
        problems.append(f"release: no-cache-filters must be runtime-assemble,libcurl-static: {w.get('no-cache-filters')!r}")
    cache_tag = str((_release_job(root).get("env") or {}).get("CACHE_TAG", ""))
    if cache_tag != "${{ (github.ref == 'refs/heads/main' || startsWith(github.ref, 'refs/tags/v')) && 'buildcache' || 'buildcache-branches' }}":
        problems.append(f"release: CACHE_TAG must be buildcache for main and tags only, buildcache-branches otherwise: {cache_tag!r}")
    image_step = next((s for s in steps(_release_job(root)) if s.get("id") == "image"), {})
    if 'ghcr.io/${owner}/${SERVICE}' not in str(image_step.get("run", "")):
        problems.append("release: image name must be ghcr.io/<owner>/<service>")
    return problems


def check_release_attestations(root: Path) -> Problems:
    w = with_(_service_build(_release_job(root)))
    problems = []
    if w.get("provenance") != "mode=max":
        problems.append(f"release: provenance must be mode=max, got {w.get('provenance')!r}")
    if w.get("sbom") is not True:
        problems.append(f"release: sbom must be true, got {w.get('sbom')!r}")
    return problems


def check_release_build_args(root: Path) -> Problems:
    args = build_args(_service_build(_release_job(root)))
    problems = []
    for key in ("VERSION", "REVISION", "CREATED"):
        if "steps.meta.outputs" not in args.get(key, ""):
            problems.append(f"release: build arg {key} must come from the metadata-action outputs")
    return problems


def _publish_job(root: Path) -> dict:
    return job_named(root, "release", "publish")


def _signing_steps(job: dict) -> tuple[int, int, int, int]:
    """(staged digest, cosign-installer, sign, verify) step indexes of the publish job."""
    def index(pred) -> int:
        return next((i for i, s in enumerate(steps(job)) if pred(s)), -1)

    build = index(lambda s: s.get("id") == "staged")
    install = index(lambda s: action_of(s) == "sigstore/cosign-installer")
    sign = index(lambda s: "cosign sign" in str(s.get("run", "")))
    verify = index(lambda s: "cosign verify" in str(s.get("run", "")))
    return build, install, sign, verify


def check_release_signing_static(root: Path) -> Problems:
    job = _publish_job(root)
    build, install, sign, verify = _signing_steps(job)
    problems = []
    if min(build, install, sign, verify) < 0 or not build < sign < verify or not install < sign:
        return [f"release/publish: need the staged digest, cosign-installer, sign, verify in order (got {build, install, sign, verify})"]
    tag = next((i for i, s in enumerate(steps(job)) if "imagetools create" in str(s.get("run", ""))), -1)
    if tag < verify:
        problems.append("release/publish: the release tags must be added after the signature is verified")
    build_id = steps(job)[build].get("id")
    for i in (sign, verify):
        env = steps(job)[i].get("env") or {}
        if env.get("DIGEST") != f"${{{{ steps.{build_id}.outputs.digest }}}}":
            problems.append(f"release: step {steps(job)[i].get('name')!r} must take DIGEST from the build step")
    return problems


def _run_with_fake_cosign(step: dict, repository: str) -> tuple[int, list[list[str]], str]:
    """Runs a step's script as GitHub would (bash -eo pipefail) with cosign replaced by a recorder."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        record = tmpdir / "calls"
        fake = tmpdir / "cosign"
        fake.write_text('#!/usr/bin/env bash\nprintf "%s\\0" "$@" >> "$COSIGN_RECORD"\nprintf "\\n" >> "$COSIGN_RECORD"\n')
        fake.chmod(0o755)
        script = tmpdir / "step.sh"
        script.write_text(str(step.get("run", "")))
        env = {
            "PATH": f"{tmpdir}:{os.environ['PATH']}",
            "COSIGN_RECORD": str(record),
            "GITHUB_REPOSITORY": repository,
            "IMAGE": "ghcr.io/acme/example-service",
            "DIGEST": "sha256:" + "ab" * 32,
        }
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              env=env, capture_output=True, text=True, timeout=30)
        calls = []
        if record.exists():
            for chunk in record.read_text().split("\n"):
                if chunk:
                    calls.append(chunk.split("\0")[:-1])
        return proc.returncode, calls, proc.stdout + proc.stderr


def check_release_signing_behaviour(root: Path) -> Problems:
    """Signs image@digest (never a tag) and verifies identity and issuer tightly enough."""
    job = _publish_job(root)
    _, _, sign, verify = _signing_steps(job)
    if sign < 0 or verify < 0:
        return ["release: no cosign sign / verify steps"]
    problems = []
    pinned = "ghcr.io/acme/example-service@sha256:" + "ab" * 32
    rc, calls, out = _run_with_fake_cosign(steps(job)[sign], "Acme/code.services")
    if rc != 0 or len(calls) != 1:
        return [f"release: sign step failed or called cosign {len(calls)} times: {out}"]
    args = calls[0]
    if args[:1] != ["sign"] or "--yes" not in args:
        problems.append(f"release: expected 'cosign sign --yes ...', got {args}")
    refs = [a for a in args[1:] if not a.startswith("-")]
    if refs != [pinned]:
        problems.append(f"release: must sign exactly the pushed digest {pinned}, got {refs}")
    rc, calls, out = _run_with_fake_cosign(steps(job)[verify], "Acme/code.services")
    if rc != 0 or len(calls) != 1:
        return problems + [f"release: verify step failed or called cosign {len(calls)} times: {out}"]
    args = calls[0]
    if args[:1] != ["verify"] or pinned not in args:
        problems.append(f"release: must verify the pushed digest, got {args}")

    def flag(name: str) -> str | None:
        return args[args.index(name) + 1] if name in args[:-1] else None

    if flag("--certificate-oidc-issuer") != OIDC_ISSUER:
        problems.append(f"release: --certificate-oidc-issuer must be {OIDC_ISSUER}")
    regexp = flag("--certificate-identity-regexp")
    if regexp is None:
        return problems + ["release: verify lacks --certificate-identity-regexp"]
    ours = "https://github.com/Acme/code.services/.github/workflows/release.yml@refs/"
    for good in (ours + "tags/v1.2.3", ours + "heads/main"):
        if not re.search(regexp, good):
            problems.append(f"release: identity regexp {regexp!r} rejects our own signer {good}")
    for bad in (
        "https://github.com/Evil/code.services/.github/workflows/release.yml@refs/heads/main",
        "https://github.com/Acme/code.services/.github/workflows/ci.yml@refs/heads/main",
        "https://github.com/Acme/code.services/.github/workflows/release.yml@refs/heads/feature",
        "https://github.com/Acme/codeXservices/.github/workflows/release.yml@refs/heads/main",
    ):
        if re.search(regexp, bad):
            problems.append(f"release: identity regexp {regexp!r} accepts foreign signer {bad}")
    return problems


# --------------------------------------------------------------------------- release gate


STAGING_TAG = "staging-${{ github.sha }}-${{ github.run_id }}"
RELEASE_REFS = "github.ref == 'refs/heads/main' || startsWith(github.ref, 'refs/tags/v')"
FEATURE_REFS = "github.ref_type == 'branch' && github.ref != 'refs/heads/main'"


def _gate_policy(step: dict) -> tuple:
    w = with_(step)
    return (w.get("scan-type", "image"), w.get("severity"), w.get("ignore-unfixed"), str(w.get("exit-code")))


def check_release_gate(root: Path) -> Problems:
    """build -> push by digest (staging tag) -> Trivy on both architectures -> sign -> tag: the jobs
    that sign or tag need the scan job, so a finding that fails the gate stops them; only the image
    job pushes a build; the gate applies security-scan.yml's blocking policy."""
    wf = load_workflows(root).get("release") or {}
    all_ = jobs(wf)
    problems = []
    for name, need in (("image", {"services"}), ("scan", {"image"}), ("publish", {"image", "scan"}), ("feature", {"image", "scan"})):
        job = all_.get(name)
        if not job:
            problems.append(f"release: no job {name}")
            continue
        missing = need - set(needs_of(job))
        if missing:
            problems.append(f"release/{name}: must need {sorted(missing)}")
        if (job.get("env") or {}).get("STAGING_TAG") != STAGING_TAG:
            problems.append(f"release/{name}: env STAGING_TAG must be {STAGING_TAG} (unique per run)")
        if "always()" in str(job.get("if", "")) or "failure()" in str(job.get("if", "")):
            problems.append(f"release/{name}: must not run when a job it needs failed")
        if name != "image" and steps_using(job, "docker/build-push-action"):
            problems.append(f"release/{name}: only the image job builds and pushes")
    if str((all_.get("publish") or {}).get("if", "")) != RELEASE_REFS:
        problems.append(f"release/publish: must run for main and v* tags only: if: {RELEASE_REFS}")
    if str((all_.get("feature") or {}).get("if", "")) != FEATURE_REFS:
        problems.append(f"release/feature: must run for other branches only: if: {FEATURE_REFS}")
    for name, job in all_.items():
        if (job.get("permissions") or {}).get("id-token") == "write" and name != "publish":
            problems.append(f"release/{name}: only the publish job signs (id-token: write)")
    feature = all_.get("feature") or {}
    if _signs(feature) or steps_using(feature, "docker/metadata-action"):
        problems.append("release/feature: feature images get no release tag and no signature")
    # The scan: each architecture's image of the staged index, by digest, with the blocking policy.
    scan = all_.get("scan") or {}
    refs = [str(with_(s).get("image-ref")) for s in steps_using(scan, "aquasecurity/trivy-action")]
    for arch in ("amd64", "arm64"):
        want = f"${{{{ steps.staged.outputs.image }}}}@${{{{ steps.staged.outputs.{arch} }}}}"
        if want not in refs:
            problems.append(f"release/scan: no Trivy scan of {want}")
    gate = [s for s in steps_using(job_named(root, "security-scan", "image"), "aquasecurity/trivy-action")
            if str(with_(s).get("exit-code")) == "1"]
    policy = {_gate_policy(s) for s in gate}
    if len(policy) != 1:
        problems.append(f"security-scan/image: expected one blocking Trivy step, found {len(gate)}")
    for s in steps_using(scan, "aquasecurity/trivy-action"):
        if not policy or {_gate_policy(s)} != policy:
            problems.append(f"release/scan: {s.get('name')!r} must apply security-scan.yml's policy {sorted(policy)}")
    staged = next((s for s in steps(scan) if s.get("id") == "staged"), {})
    if "${STAGING_TAG}" not in str(staged.get("run", "")):
        problems.append("release/scan: the staged digests must be read from this run's staging tag")
    return problems


def _fake_docker(tmpdir: Path, index: dict, digest: str) -> None:
    """A stand-in docker: `buildx imagetools inspect REF --format ...` prints {"digest": ...},
    `--raw` prints the index, `create` is recorded."""
    fake = tmpdir / "docker"
    (tmpdir / "index.json").write_text(json.dumps(index))
    fake.write_text(textwrap.dedent(f"""\
        #!/usr/bin/env bash
        printf '%s\\0' "$@" >> "{tmpdir}/calls"; printf '\\n' >> "{tmpdir}/calls"
        case " $* " in
          *" --raw "*) cat "{tmpdir}/index.json" ;;
          *" --format "*) printf '{{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"%s"}}\\n' "{digest}" ;;
        esac
        """))
    fake.chmod(0o755)


def _run_step(step: dict, env: dict[str, str], index: dict | None = None,
              digest: str = "sha256:" + "cd" * 32) -> tuple[int, dict[str, str], list[list[str]], str]:
    """Runs a step's script (bash -eo pipefail) with a stand-in docker; returns its outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        _fake_docker(tmpdir, index or {}, digest)
        script = tmpdir / "step.sh"
        script.write_text(str(step.get("run", "")))
        out_file = tmpdir / "output"
        out_file.touch()
        full_env = {"PATH": f"{tmpdir}:{os.environ['PATH']}", "GITHUB_OUTPUT": str(out_file),
                    "GITHUB_STEP_SUMMARY": str(tmpdir / "summary"), **env}
        proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                              env=full_env, capture_output=True, text=True, timeout=30)
        outputs = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
        calls = []
        if (tmpdir / "calls").exists():
            calls = [c.split("\0")[:-1] for c in (tmpdir / "calls").read_text().split("\n") if c]
        return proc.returncode, outputs, calls, proc.stdout + proc.stderr


def check_release_staged_digest_behaviour(root: Path) -> Problems:
    """The scan job's `staged` step, run with a stand-in docker: the index digest and the digests of
    its linux/amd64 and linux/arm64 images (attestation manifests ignored); a missing architecture
    fails the step."""
    step = next((s for s in steps(job_named(root, "release", "scan")) if s.get("id") == "staged"), None)
    if step is None:
        return ["release/scan: no step id: staged"]
    amd, arm, att = ("sha256:" + c * 64 for c in "123")
    def index(*platforms):
        return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"digest": d, "platform": {"os": os_, "architecture": a}} for d, os_, a in platforms]}
    env = {"GITHUB_REPOSITORY_OWNER": "Acme", "SERVICE": "example-service", "STAGING_TAG": "staging-abc-1"}
    problems = []
    rc, out, calls, log = _run_step(step, env, index((amd, "linux", "amd64"), (att, "unknown", "unknown"), (arm, "linux", "arm64")))
    want = {"image": "ghcr.io/acme/example-service", "digest": "sha256:" + "cd" * 32, "amd64": amd, "arm64": arm}
    if rc != 0 or out != want:
        problems.append(f"release/scan: staged step gave {out} (exit {rc}), want {want}: {log}")
    if not any("ghcr.io/acme/example-service:staging-abc-1" in c for c in calls):
        problems.append(f"release/scan: staged step must resolve the staging tag, called {calls}")
    rc, out, _, _ = _run_step(step, env, index((amd, "linux", "amd64"), (att, "unknown", "unknown")))
    if rc == 0:
        problems.append("release/scan: an index without linux/arm64 must fail the staged step")
    return problems


def check_release_feature_tag_behaviour(root: Path) -> Problems:
    """The feature job's tag: feature-<branch>-<sha>, the branch made a valid tag, at most 128."""
    step = next((s for s in steps(job_named(root, "release", "feature")) if s.get("id") == "tag"), None)
    if step is None:
        return ["release/feature: no step id: tag"]
    sha = "0123456789abcdef0123456789abcdef01234567"
    cases = {
        "feat/Login-Page": f"feature-feat-login-page-{sha}",
        "fix_1.2": f"feature-fix_1.2-{sha}",
        "-weird//name..": f"feature-weird-name-{sha}",
        "é": f"feature-branch-{sha}",
    }
    problems = []
    for branch, want in cases.items():
        rc, out, _, log = _run_step(step, {"GITHUB_REF_NAME": branch, "GITHUB_SHA": sha})
        if rc != 0 or out.get("tag") != want:
            problems.append(f"release/feature: branch {branch!r} gave {out.get('tag')!r} (exit {rc}), want {want!r}: {log}")
    rc, out, _, log = _run_step(step, {"GITHUB_REF_NAME": "x" * 300, "GITHUB_SHA": sha})
    tag = out.get("tag", "")
    if rc != 0 or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) or not tag.endswith(sha):
        problems.append(f"release/feature: a long branch name gave {tag!r} (exit {rc}): {log}")
    tagger = next((s for s in steps(job_named(root, "release", "feature")) if "imagetools create" in str(s.get("run", ""))), {})
    rc, _, calls, log = _run_step(tagger, {"GITHUB_REPOSITORY_OWNER": "Acme", "SERVICE": "svc",
                                           "STAGING_TAG": "staging-abc-1", "TAG": f"feature-x-{sha}"})
    create = [c for c in calls if "create" in c]
    if rc != 0 or create != [["buildx", "imagetools", "create", "--tag", f"ghcr.io/acme/svc:feature-x-{sha}",
                              "ghcr.io/acme/svc@sha256:" + "cd" * 32]]:
        problems.append(f"release/feature: must tag the staged digest only, called {create} (exit {rc}): {log}")
    return problems


def check_release_publish_tags_behaviour(root: Path) -> Problems:
    """The publish job adds every metadata-action tag to the signed digest in one imagetools create
    (no rebuild), and fails when a tag then points elsewhere or names another image."""
    step = next((s for s in steps(_publish_job(root)) if "imagetools create" in str(s.get("run", ""))), None)
    if step is None:
        return ["release/publish: no step runs docker buildx imagetools create"]
    image, digest = "ghcr.io/acme/svc", "sha256:" + "cd" * 32
    env = {"IMAGE": image, "DIGEST": digest, "TAGS": f"{image}:1.2.3\n{image}:1.2\n{image}:latest\n"}
    problems = []
    rc, _, calls, log = _run_step(step, env)
    create = [c for c in calls if "create" in c]
    want = ["buildx", "imagetools", "create", "--tag", f"{image}:1.2.3", "--tag", f"{image}:1.2",
            "--tag", f"{image}:latest", f"{image}@{digest}"]
    if rc != 0 or create != [want]:
        problems.append(f"release/publish: expected {want}, got {create} (exit {rc}): {log}")
    rc, _, _, _ = _run_step(step, env, digest="sha256:" + "ef" * 32)
    if rc == 0:
        problems.append("release/publish: a tag that does not point at the signed digest must fail the job")
    rc, _, _, _ = _run_step(step, {**env, "TAGS": "ghcr.io/evil/svc:latest\n"})
    if rc == 0:
        problems.append("release/publish: a tag of another image must fail the job")
    return problems


def check_no_push_credentials_for_forks(root: Path) -> Problems:
    """Pull requests from forks never get push or signing credentials: release.yml has no pull
    request trigger at all, and any job with packages/id-token write in a workflow that runs on
    pull requests is limited to pull requests from this repository."""
    problems = []
    release_on = triggers(load_workflows(root).get("release") or {})
    for event in ("pull_request", "pull_request_target", "workflow_run"):
        if event in release_on:
            problems.append(f"release: must not run on {event} (forks would reach the push credentials)")
    guard = "github.event.pull_request.head.repo.full_name == github.repository"
    for wf_name, wf in load_workflows(root).items():
        if "pull_request" not in triggers(wf):
            continue
        for job_name, job in jobs(wf).items():
            perms = job.get("permissions") or {}
            if perms.get("packages") == "write" or perms.get("id-token") == "write":
                if guard not in str(job.get("if", "")):
                    problems.append(f"{wf_name}/{job_name}: push credentials on pull_request need if: ... {guard}")
    return problems


# --------------------------------------------------------------------------- base image lock


LOCK = Path("docker/base-images/Dockerfile")
LOCK_FROM = re.compile(r"^FROM\s+(?P<repo>[a-z0-9][a-z0-9._/-]*):(?P<tag>[\w][\w.-]{0,127})@(?P<digest>\S+)\s+AS\s+(?P<name>\S+)$")


def _lock_pins(root: Path) -> dict[str, str]:
    """stage name -> image:tag@digest of every FROM line of the lock file (parsed here in Python)."""
    path = root / LOCK
    if not path.exists():
        return {}
    pins = {}
    for word, rest in _dockerfile_instructions(path.read_text()):
        m = LOCK_FROM.match(f"{word} {rest}")
        if m:
            pins[m["name"]] = f"{m['repo']}:{m['tag']}@{m['digest']}"
    return pins


def check_base_image_lock(root: Path) -> Problems:
    """docker/base-images/Dockerfile pins every base image by digest for CI and release builds:
    only literal FROM lines (Dependabot reads them), well-formed sha256 digests, tags equal to
    docker/Dockerfile's ARG defaults (so the two cannot drift), and the workflows build with them."""
    path = root / LOCK
    if not path.exists():
        return [f"{LOCK} is missing"]
    problems = []
    instructions = _dockerfile_instructions(path.read_text())
    froms = [rest for word, rest in instructions if word == "FROM"]
    others = [word for word, _ in instructions if word not in ("FROM", "USER")]
    if others:
        problems.append(f"{LOCK}: only FROM lines (and USER) belong in the lock file, found {others}")
    pins = {}
    for rest in froms:
        m = LOCK_FROM.match(f"FROM {rest}")
        if not m:
            problems.append(f"{LOCK}: not 'FROM image:tag@sha256:<digest> AS name': FROM {rest}")
            continue
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", m["digest"]):
            problems.append(f"{LOCK}: {m['name']}: malformed digest {m['digest']!r}")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", m["name"]) or m["name"] in pins:
            problems.append(f"{LOCK}: bad or repeated name {m['name']!r}")
        pins[m["name"]] = (m["repo"], m["tag"], m["digest"])
    # The tags equal docker/Dockerfile's ARG defaults, which stay tag-only for the offline build.
    defaults = {}
    dockerfile = root / "docker" / "Dockerfile"
    for word, rest in _dockerfile_instructions(dockerfile.read_text() if dockerfile.exists() else ""):
        if word == "FROM":
            break
        if word == "ARG":
            key, _, value = rest.partition("=")
            defaults[key.strip()] = value.strip().strip('"')
    for arg in ("SWIFT_IMAGE", "DEBIAN_IMAGE"):
        default = defaults.get(arg, "")
        if "@" in default:
            problems.append(f"docker/Dockerfile: ARG {arg} default must stay tag-only (offline build), got {default!r}")
        pin = pins.get(arg.lower())
        if pin is None:
            problems.append(f"{LOCK}: no pin for {arg} (FROM {default}@sha256:... AS {arg.lower()})")
        elif f"{pin[0]}:{pin[1]}" != default:
            problems.append(f"{LOCK}: {arg.lower()} pins {pin[0]}:{pin[1]}, docker/Dockerfile's ARG {arg} default is {default!r}")
    # The script the workflows run reads the same pins.
    script = root / "scripts" / "ci" / "base-image-args.sh"
    proc = subprocess.run(["bash", str(script), str(path)], capture_output=True, text=True, timeout=30)
    want = [f"{name.upper()}={repo}:{tag}@{digest}" for name, (repo, tag, digest) in pins.items()]
    if proc.returncode != 0 or proc.stdout.splitlines() != want:
        problems.append(f"scripts/ci/base-image-args.sh: printed {proc.stdout.splitlines()} (exit {proc.returncode}), want {want}: {proc.stderr}")
    # The builds pass them: release and security-scan image jobs, CI's swift and containers jobs.
    for wf_name in ("release", "security-scan"):
        job = job_named(root, wf_name, "image")
        base = next((s for s in steps(job) if s.get("id") == "base"), {})
        if str(base.get("run", "")).strip() != "scripts/ci/base-image-args.sh --github-output":
            problems.append(f"{wf_name}/image: needs a step id: base running scripts/ci/base-image-args.sh --github-output")
        args = build_args(_service_build(job))
        for arg in ("SWIFT_IMAGE", "DEBIAN_IMAGE"):
            if args.get(arg) != f"${{{{ steps.base.outputs.{arg.lower()} }}}}":
                problems.append(f"{wf_name}/image: build arg {arg} must be ${{{{ steps.base.outputs.{arg.lower()} }}}}, got {args.get(arg)!r}")
    ci = job_named(root, "ci", "base-images")
    pins_step = next((s for s in steps(ci) if s.get("id") == "pins"), {})
    if str(pins_step.get("run", "")).strip() != "scripts/ci/base-image-args.sh --github-output":
        problems.append("ci/base-images: needs a step id: pins running scripts/ci/base-image-args.sh --github-output")
    for out in ("swift_image", "postgres_image"):
        if (ci.get("outputs") or {}).get(out) != f"${{{{ steps.pins.outputs.{out} }}}}":
            problems.append(f"ci/base-images: output {out} must be ${{{{ steps.pins.outputs.{out} }}}}")
    containers = steps(job_named(root, "ci", "containers"))
    pull = next((i for i, s in enumerate(containers) if str(s.get("run", "")).strip() == "scripts/ci/base-image-args.sh --pull"), -1)
    suite = next((i for i, s in enumerate(containers) if "make test-containers" in str(s.get("run", ""))), -1)
    if not 0 <= pull < suite:
        problems.append("ci/containers: must run scripts/ci/base-image-args.sh --pull before make test-containers")
    return problems


def check_base_image_script_behaviour(root: Path) -> Problems:
    """scripts/ci/base-image-args.sh refuses a lock file it cannot trust, writes the job outputs, and
    --pull pulls each image by digest and tags it with its plain tag."""
    script = root / "scripts" / "ci" / "base-image-args.sh"
    good = "FROM swift:6.3-bookworm@sha256:" + "a" * 64 + " AS swift_image\n"
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        lock = tmpdir / "Dockerfile"
        for bad in ("FROM swift:6.3-bookworm AS swift_image\n",
                    "FROM swift:6.3-bookworm@sha256:" + "a" * 63 + " AS swift_image\n",
                    "FROM swift@sha256:" + "a" * 64 + " AS swift_image\n",
                    good + good,
                    good + "RUN true\n",
                    "# nothing pinned\n"):
            lock.write_text(bad)
            proc = subprocess.run(["bash", str(script), str(lock)], capture_output=True, text=True, timeout=30)
            if proc.returncode == 0:
                problems.append(f"base-image-args.sh accepted {bad!r}")
        lock.write_text("# pins\n" + good + "\nUSER 65534:65534\n")
        output = tmpdir / "output"
        _fake_docker(tmpdir, {}, "sha256:" + "cd" * 32)
        proc = subprocess.run(["bash", str(script), "--github-output", "--pull", str(lock)], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "GITHUB_OUTPUT": str(output), "PATH": f"{tmpdir}:{os.environ['PATH']}"})
        ref = "swift:6.3-bookworm@sha256:" + "a" * 64
        if proc.returncode != 0 or proc.stdout != f"SWIFT_IMAGE={ref}\n":
            problems.append(f"base-image-args.sh printed {proc.stdout!r} (exit {proc.returncode}): {proc.stderr}")
        if not output.exists() or output.read_text() != f"swift_image={ref}\n":
            problems.append(f"base-image-args.sh --github-output wrote {output.read_text() if output.exists() else None!r}")
        calls = [c.split("\0")[:-1] for c in (tmpdir / "calls").read_text().split("\n") if c] if (tmpdir / "calls").exists() else []
        digest_ref = "swift@sha256:" + "a" * 64
        if calls != [["pull", "--quiet", digest_ref], ["tag", digest_ref, "swift:6.3-bookworm"]]:
            problems.append(f"base-image-args.sh --pull must pull by digest and tag it, called {calls}")
    return problems


# --------------------------------------------------------------------------- security-scan.yml


def check_scan_triggers(root: Path) -> Problems:
    on = triggers(load_workflows(root).get("security-scan") or {})
    problems = []
    if "pull_request" not in on:
        problems.append("security-scan: not run on pull_request")
    if "main" not in ((on.get("push") or {}).get("branches") or []):
        problems.append("security-scan: not run on pushes to main")
    schedule = on.get("schedule") or []
    if not schedule or not all("cron" in s for s in schedule):
        problems.append("security-scan: no weekly schedule")
    return problems


def _sarif_pairs(job: dict) -> list[tuple[dict, dict]]:
    """(trivy step writing SARIF, upload-sarif step reading that file)."""
    pairs = []
    uploads = steps_using(job, "github/codeql-action/upload-sarif")
    for trivy in steps_using(job, "aquasecurity/trivy-action"):
        if with_(trivy).get("format") != "sarif":
            continue
        match = [u for u in uploads if with_(u).get("sarif_file") == with_(trivy).get("output")]
        pairs.append((trivy, match[0] if match else {}))
    return pairs


def check_scan_images(root: Path) -> Problems:
    job = job_named(root, "security-scan", "image")
    problems = []
    build = _service_build(job)
    w = with_(build)
    if w.get("load") is not True or w.get("push") is True:
        problems.append("security-scan: must build each service locally (load: true, no push)")
    pairs = _sarif_pairs(job)
    if not pairs:
        problems.append("security-scan: no Trivy image scan with SARIF output")
    for trivy, upload in pairs:
        t = with_(trivy)
        if t.get("scan-type", "image") != "image" or t.get("image-ref") != w.get("tags"):
            problems.append("security-scan: Trivy must scan the image that was just built")
        if t.get("severity") != "CRITICAL,HIGH":
            problems.append(f"security-scan: image severity must be CRITICAL,HIGH, got {t.get('severity')!r}")
        if t.get("limit-severities-for-sarif") is not True:
            problems.append("security-scan: limit-severities-for-sarif: true is needed for SARIF to honour severity")
        if not upload:
            problems.append(f"security-scan: SARIF {t.get('output')!r} is never uploaded")
        elif "${{ matrix.service }}" not in str(with_(upload).get("category", "")):
            problems.append("security-scan: upload-sarif category must differ per image")
    return problems


def check_scan_config(root: Path) -> Problems:
    job = job_named(root, "security-scan", "config")
    problems = []
    pairs = _sarif_pairs(job)
    scanned = set()
    for trivy, upload in pairs:
        t = with_(trivy)
        if t.get("scan-type") != "config":
            continue
        ref = str(t.get("scan-ref", "."))
        if ref == "${{ matrix.directory }}":
            scanned |= {e.get("directory") for e in (job.get("strategy") or {}).get("matrix", {}).get("include", [])}
            scanned |= set(matrix_values(job, "directory"))
        else:
            scanned.add(ref.strip("./"))
        if not upload:
            problems.append("security-scan: config SARIF is never uploaded")
        elif "${{ matrix.label }}" not in str(with_(upload).get("category", "")) and ref == "${{ matrix.directory }}":
            problems.append("security-scan: config upload category must differ per directory (matrix.label)")
    # Trivy's config scan reads Dockerfiles, not compose files: the Dockerfiles of docker/ and
    # compose/logging/ (the compose files themselves: check_scan_compose).
    if not {"docker", "compose/logging"} <= scanned:
        problems.append(f"security-scan: Trivy config scan must cover docker/ and compose/logging/, covers {sorted(scanned)}")
    return problems


def check_scan_compose(root: Path) -> Problems:
    """The compose files are checked by something that reads them: scripts/lint.sh compose renders
    every overlay combination and fails when a service lacks the hardening. The old Trivy config
    step on compose/ (Trivy has no compose scanner) is gone."""
    wf = load_workflows(root).get("security-scan") or {}
    problems = []
    runs = [(name, s) for name, job in jobs(wf).items() for s in steps(job)
            if re.search(r"^\s*scripts/lint\.sh compose\s*$", str(s.get("run", "")), re.M)]
    if not runs:
        problems.append("security-scan: no step runs `scripts/lint.sh compose` (the compose hardening check)")
    for name, step in runs:
        job = jobs(wf)[name]
        if not steps_using(job, "actions/checkout") or not steps_using(job, "actions/setup-python"):
            problems.append(f"security-scan/{name}: needs a checkout and Python for scripts/lint.sh compose")
        if step.get("continue-on-error") or "|| true" in str(step.get("run", "")):
            problems.append(f"security-scan/{name}: the compose check must fail the job")
    for name, job in jobs(wf).items():
        for s in steps_using(job, "aquasecurity/trivy-action"):
            t = with_(s)
            refs = {str(t.get("scan-ref", "")).strip("./")}
            if t.get("scan-ref") == "${{ matrix.directory }}":
                refs = set(matrix_values(job, "directory")) | {
                    e.get("directory") for e in (job.get("strategy") or {}).get("matrix", {}).get("include", [])}
            if t.get("scan-type") == "config" and "compose" in refs:
                problems.append(f"security-scan/{name}: Trivy config on compose/ checks no compose file; remove it")
    return problems


# --------------------------------------------------------------------------- retention.yml


def _retention_job(root: Path) -> dict:
    return job_named(root, "retention", "prune")


def check_retention_triggers_and_dry_run(root: Path) -> Problems:
    on = triggers(load_workflows(root).get("retention") or {})
    problems = []
    if not on.get("schedule"):
        problems.append("retention: no schedule")
    dry_run = (((on.get("workflow_dispatch") or {}).get("inputs")) or {}).get("dry_run") or {}
    if dry_run.get("type") != "boolean" or dry_run.get("default") is not True:
        problems.append(f"retention: workflow_dispatch needs a boolean dry_run input defaulting to true: {dry_run}")
    expr = str((_retention_job(root).get("env") or {}).get("DRY_RUN", ""))
    if "inputs.dry_run" not in expr or "workflow_dispatch" not in expr:
        problems.append(f"retention: DRY_RUN must follow the dry_run input on manual runs: {expr!r}")
    return problems


def check_retention_constants(root: Path) -> Problems:
    job = _retention_job(root)
    env = job.get("env") or {}
    problems = []

    def number(name: str) -> int | None:
        try:
            return int(env.get(name))
        except (TypeError, ValueError):
            return None

    if number("KEEP_MOST_RECENT") != 10:
        problems.append(f"retention: KEEP_MOST_RECENT must be 10, got {env.get('KEEP_MOST_RECENT')!r}")
    if number("MAX_AGE_DAYS") != 30:
        problems.append(f"retention: MAX_AGE_DAYS must be 30, got {env.get('MAX_AGE_DAYS')!r}")
    if env.get("PACKAGES") != "${{ needs.services.outputs.names }}" or "services" not in needs_of(job):
        problems.append(f"retention: PACKAGES must be the services job's names (services.json), got {env.get('PACKAGES')!r}")
    if not {"latest", "stable"} <= set(str(env.get("PROTECTED_TAGS", "")).split()):
        problems.append(f"retention: PROTECTED_TAGS must include latest and stable: {env.get('PROTECTED_TAGS')!r}")
    try:
        semver = re.compile(str(env.get("PROTECTED_SEMVER_PATTERN")))
        alias = re.compile(str(env.get("PROTECTED_ALIAS_PATTERN")))
    except re.error as error:
        return problems + [f"retention: protected patterns do not compile: {error}"]
    for tag in ("1.2.3", "v1.2.3", "10.20.30"):
        if not semver.search(tag):
            problems.append(f"retention: semver pattern does not protect {tag}")
    for tag in ("1.2", "1", "v2"):
        if not alias.search(tag):
            problems.append(f"retention: alias pattern does not protect {tag}")
    for tag in ("main-" + "a" * 40, "sha-abc1234", "1.2.3-rc.1", "buildcache", "pr-12"):
        if semver.search(tag) or alias.search(tag):
            problems.append(f"retention: protected patterns wrongly protect {tag}")
    if job.get("permissions") != {"packages": "write"}:
        problems.append(f"retention: job permissions must be exactly packages: write, got {job.get('permissions')!r}")
    script = str(with_(_step(job, "actions/github-script")).get("script", ""))
    for name in ("KEEP_MOST_RECENT", "MAX_AGE_DAYS", "PROTECTED_TAGS", "PROTECTED_SEMVER_PATTERN",
                 "PROTECTED_ALIAS_PATTERN", "PACKAGES", "DRY_RUN", "CACHE_TAGS", "GRACE_HOURS"):
        if f"process.env.{name}" not in script:
            problems.append(f"retention: the script does not read {name}")
    return problems


# A package as the retention script will see it. Ages in hours; `expect` is the policy's answer.
def _digest(label: str) -> str:
    return "sha256:" + sha256(label.encode()).hexdigest()


def _retention_fixture() -> tuple[list[dict], dict[str, list[str]]]:
    day = 24
    versions: list[dict] = []
    manifests: dict[str, list[str]] = {}

    def add(label: str, tags: list[str], age: float, expect: str, children: tuple[str, ...] = ()):
        versions.append({"id": len(versions) + 1, "label": label, "digest": _digest(label),
                         "tags": tags, "age_hours": age, "expect": expect})
        if children:
            manifests[_digest(label)] = [_digest(c) for c in children]
        for child in children:
            versions.append({"id": len(versions) + 1, "label": child, "digest": _digest(child),
                             "tags": [], "age_hours": age, "expect": expect})

    release = _digest("release-1.2.3")
    add("release-1.2.3", ["1.2.3", "1.2", "1", "latest"], 100 * day, "keep",
        ("rel-amd64", "rel-arm64", "rel-att-amd64", "rel-att-arm64"))
    add("release-0.9.0", ["0.9.0"], 200 * day, "keep", ("old-amd64",))
    add("stable", ["stable"], 90 * day, "keep")
    add("cache", ["buildcache"], 36, "keep")  # must not take one of the ten places
    add("sig-release", [release.replace(":", "-") + ".sig"], 100 * day, "keep")
    add("referrers-release", [release.replace(":", "-")], 100 * day, "keep", ("bundle-release",))
    add("young", ["main-young", "sha-young"], 5 * day, "keep", ("young-amd64",))
    for age in range(31, 46):  # ten most recent tagged = young + 31..39 days
        add(f"main-{age}", [f"main-{age}", f"sha-{age}"], age * day,
            "keep" if age <= 39 else "delete", (f"main-{age}-amd64",))
    add("sig-main-45", [_digest("main-45").replace(":", "-") + ".sig"], 45 * day, "delete")
    add("rc", ["1.3.0-rc.1"], 40 * day, "delete")
    add("orphan", [], 10 * day, "delete")
    add("in-flight", [], 2, "keep")
    return versions, manifests


NODE_HARNESS = textwrap.dedent(r"""
    const fs = require('fs');
    const input = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    const script = fs.readFileSync(process.argv[3], 'utf8');
    const now = Date.now();
    const out = { listed: [], deleted: [], logs: [], failed: null, error: null, fetched: [], summary: null };
    const log = (kind) => (msg) => out.logs.push(`${kind}: ${msg}`);
    const api = {
      getAllPackageVersionsForPackageOwnedByOrg: async () => { throw new Error('call through paginate'); },
      getAllPackageVersionsForPackageOwnedByUser: async () => { throw new Error('call through paginate'); },
      deletePackageVersionForOrg: async (p) => del('org', p),
      deletePackageVersionForUser: async (p) => del('user', p),
    };
    async function del(kind, p) {
      if (input.delete_status) { const e = new Error('denied'); e.status = input.delete_status; throw e; }
      out.deleted.push({ kind, ...p });
    }
    const github = {
      rest: {
        packages: api,
        users: { getByUsername: async ({ username }) => ({ data: { login: username, type: input.api_owner_type } }) },
      },
      paginate: async (fn, params) => {
        const kind = fn === api.getAllPackageVersionsForPackageOwnedByOrg ? 'org'
          : fn === api.getAllPackageVersionsForPackageOwnedByUser ? 'user' : 'other';
        out.listed.push({ kind, ...params });
        const pkg = input.packages[params.package_name];
        if (pkg === undefined) { const e = new Error('Not Found'); e.status = 404; throw e; }
        return pkg.map((v) => ({
          id: v.id, name: v.digest,
          created_at: new Date(now - v.age_hours * 3600e3).toISOString(),
          updated_at: new Date(now - v.age_hours * 3600e3).toISOString(),
          metadata: { package_type: 'container', container: { tags: v.tags } },
        }));
      },
    };
    globalThis.fetch = async (url, options) => {
      out.fetched.push(url);
      const auth = (options && options.headers && options.headers.Authorization) || '';
      if (url.startsWith('https://ghcr.io/token?')) {
        const basic = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString();
        if (!basic.endsWith(':' + process.env.REGISTRY_TOKEN)) return { ok: false, status: 401, json: async () => ({}) };
        return { ok: true, status: 200, json: async () => ({ token: 'registry-bearer' }) };
      }
      const m = /^https:\/\/ghcr\.io\/v2\/([^/]+)\/([^/]+)\/manifests\/(sha256:[0-9a-f]{64})$/.exec(url);
      if (!m || auth !== 'Bearer registry-bearer') return { ok: false, status: 401, json: async () => ({}) };
      if (m[1] !== input.owner.toLowerCase()) return { ok: false, status: 404, json: async () => ({}) };
      if (input.fail_manifest === m[3]) return { ok: false, status: 500, json: async () => ({}) };
      const children = input.manifests[m[3]];
      const body = children
        ? { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
            manifests: children.map((d) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d })) }
        : { schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers: [] };
      return { ok: true, status: 200, json: async () => body };
    };
    const summary = {
      addHeading() { return this; },
      addTable(rows) { out.summary = rows; return this; },
      async write() { return this; },
    };
    const core = {
      info: log('info'), notice: log('notice'), warning: log('warning'), error: log('error'),
      startGroup: log('group'), endGroup: () => {}, setFailed: (m) => { out.failed = m; }, summary,
    };
    const context = { repo: { owner: input.owner, repo: 'code' },
                      payload: input.owner_type ? { repository: { owner: { type: input.owner_type } } } : {} };
    const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
    const fn = new AsyncFunction('require', 'github', 'context', 'core', 'glob', 'io', 'exec', 'getOctokit', script);
    fn(require, github, context, core, {}, {}, {}, () => { throw new Error('unused'); })
      .catch((e) => { out.error = String(e && e.message || e); })
      .finally(() => process.stdout.write(JSON.stringify(out)));
""")


def _retention_packages(root: Path) -> tuple[str, list[str], list[str]]:
    """The services of services.json as the registry stand-in holds them: the first with the fixture's
    versions, the second missing (never released yet), the others existing without versions."""
    names = service_names(root)
    return names[0], names[1:2], names[2:]


def _run_retention(root: Path, **scenario) -> dict:
    job = _retention_job(root)
    script = str(with_(_step(job, "actions/github-script")).get("script", ""))
    env = {k: str(v) for k, v in (job.get("env") or {}).items() if "${{" not in str(v)}
    # PACKAGES comes from the services job: the names of services.json, space-separated (what
    # check_service_list_behaviour proves the step outputs).
    env.update({"PATH": os.environ["PATH"], "REGISTRY_TOKEN": "gh-token-must-not-leak",
                "DRY_RUN": scenario.pop("dry_run"), "PACKAGES": " ".join(service_names(root))})
    versions, manifests = _retention_fixture()
    released, _, empty = _retention_packages(root)
    data = {"owner": "Acme", "owner_type": "Organization", "manifests": manifests,
            "packages": {released: versions, **{name: [] for name in empty}}}
    data.update(scenario)
    with tempfile.TemporaryDirectory() as tmp:
        files = {name: Path(tmp) / name for name in ("input.json", "script.js", "harness.js")}
        files["input.json"].write_text(json.dumps(data))
        files["script.js"].write_text(script)
        files["harness.js"].write_text(NODE_HARNESS)
        proc = subprocess.run(["node", str(files["harness.js"]), str(files["input.json"]), str(files["script.js"])],
                              env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise AssertionError(f"node harness failed: {proc.stderr}")
    return json.loads(proc.stdout)


def check_retention_behaviour(root: Path) -> Problems:
    """Runs the real retention script against a stand-in GitHub API and registry."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed; the retention script cannot be exercised")
    versions, _ = _retention_fixture()
    label = {v["id"]: v["label"] for v in versions}
    expected = {v["id"] for v in versions if v["expect"] == "delete"}
    problems = []

    out = _run_retention(root, dry_run="false")
    deleted = {d["package_version_id"] for d in out["deleted"]}
    if out["error"] or out["failed"]:
        problems.append(f"retention: run failed: {out['error'] or out['failed']}")
    if deleted != expected:
        wrong = sorted(label[i] for i in deleted - expected)
        kept = sorted(label[i] for i in expected - deleted)
        problems.append(f"retention: deleted wrongly {wrong}; failed to delete {kept}")
    released, missing, _ = _retention_packages(root)
    if any(d["kind"] != "org" or d["org"] != "Acme" or d["package_name"] != released
           or d["package_type"] != "container" for d in out["deleted"]):
        problems.append(f"retention: deletions must target the org's {released} container package: {out['deleted'][:2]}")
    listed = [entry["package_name"] for entry in out["listed"]]
    if sorted(listed) != sorted(service_names(root)):
        problems.append(f"retention: must list the package of every service once, listed {listed}")
    for name in missing:
        if not any(name in line and line.startswith("notice") for line in out["logs"]):
            problems.append(f"retention: the missing package {name} must be reported and skipped")
    if any("gh-token-must-not-leak" in line for line in out["logs"]):
        problems.append("retention: the token appears in the log")

    dry = _run_retention(root, dry_run="true")
    if dry["deleted"]:
        problems.append(f"retention: dry run deleted {len(dry['deleted'])} versions")
    rows = [r for r in (dry["summary"] or [])[1:] if r[-1] == "would delete"]
    if len(rows) != len(expected):
        problems.append(f"retention: dry run should report {len(expected)} deletions, reported {len(rows)}")

    user = _run_retention(root, dry_run="false", owner_type="User")
    if {d["kind"] for d in user["deleted"]} != {"user"} or any(d.get("username") != "Acme" for d in user["deleted"]):
        problems.append("retention: user-owned packages must use the user endpoints")
    for api_type, kind in (("Organization", "org"), ("User", "user")):
        scheduled = _run_retention(root, dry_run="false", owner_type=None, api_owner_type=api_type)
        if {d["kind"] for d in scheduled["deleted"]} != {kind}:
            problems.append(f"retention: without a repository payload, a {api_type} owner must be looked up")

    broken = _run_retention(root, dry_run="false", fail_manifest=_digest("main-31"))
    if broken["deleted"] or not broken["error"]:
        problems.append("retention: an unreadable manifest must abort before any deletion")

    denied = _run_retention(root, dry_run="false", delete_status=403)
    if not denied["failed"]:
        problems.append("retention: failed deletions must fail the job")
    return problems


# --------------------------------------------------------------------------- dependabot


def check_dependabot(root: Path) -> Problems:
    path = root / ".github" / "dependabot.yml"
    if not path.exists():
        return ["dependabot.yml is missing"]
    config = yaml.safe_load(path.read_text()) or {}
    have = {(u.get("package-ecosystem"), str(u.get("directory")).rstrip("/") or "/") for u in config.get("updates", [])}
    # docker: the digest lock (docker/Dockerfile's FROM ${ARG} lines are invisible to Dependabot).
    want = {("github-actions", "/"), ("docker", "/docker/base-images"), ("swift", "/")}
    return [f"dependabot: no updates for {eco} in {d}" for eco, d in sorted(want - have)]


# --------------------------------------------------------------------------- linters


def _lint_env() -> dict[str, str]:
    # actionlint runs shellcheck on run: scripts when it finds it on PATH.
    return {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}


def check_actionlint(root: Path) -> Problems:
    if not tool("shellcheck").exists():
        return [f"shellcheck is not in {VENV_BIN}; actionlint would skip run: scripts"]
    files = sorted(str(p.relative_to(root)) for p in (root / ".github" / "workflows").glob("*.y*ml"))
    proc = subprocess.run([str(tool("actionlint")), "-no-color", *files], cwd=root, env=_lint_env(),
                          capture_output=True, text=True, timeout=120)
    return [] if proc.returncode == 0 else [f"actionlint exit {proc.returncode}:\n{proc.stdout}{proc.stderr}"]


def check_zizmor(root: Path) -> Problems:
    proc = subprocess.run([str(tool("zizmor")), "--offline", "--no-progress", "--color", "never", ".github"],
                          cwd=root, env=_lint_env(), capture_output=True, text=True, timeout=120)
    return [] if proc.returncode == 0 else [f"zizmor exit {proc.returncode}:\n{proc.stdout}{proc.stderr}"]


# --------------------------------------------------------------------------- tests

CHECKS: dict[str, Callable[[Path], Problems]] = {
    name.removeprefix("check_"): fn for name, fn in dict(globals()).items() if name.startswith("check_")
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_property(name: str) -> None:
    problems = CHECKS[name](ROOT)
    assert not problems, "\n".join(problems)


# (check, file, text to replace, replacement). Each edit breaks exactly what its check guards.
# `file` is relative to .github/workflows/ of the copy. Edits that write service names in take them
# from services.json as well.
P = "persist-credentials: false"
NAMES = service_names(ROOT)
MUTATIONS: list[tuple[str, str, str, str]] = [
    ("workflows_present", "retention.yml", None, None),  # file removed
    ("no_pull_request_target", "ci.yml", "on:\n  pull_request:\n", "on:\n  pull_request_target:\n"),
    ("top_level_permissions_read_only", "ci.yml", "permissions:\n  contents: read\n\n#", "permissions:\n  contents: write\n\n#"),
    ("top_level_permissions_read_only", "release.yml", "permissions:\n  contents: read\n\n#", "permissions: write-all\n\n#"),
    ("job_permissions_least_privilege", "ci.yml", "timeout-minutes: 20\n    permissions:\n      contents: read\n",
     "timeout-minutes: 20\n    permissions:\n      contents: read\n      packages: write\n"),
    ("job_permissions_least_privilege", "release.yml", "      id-token: write  # cosign", "      # cosign"),
    ("job_permissions_least_privilege", "security-scan.yml", "      actions: read  # needed by upload-sarif in private repositories\n    strategy:",
     "      id-token: write\n    strategy:"),
    ("job_permissions_least_privilege", "security-scan.yml", "      security-events: write  # upload SARIF to code scanning\n", ""),
    ("job_permissions_least_privilege", "retention.yml", "      packages: write  # list", "      contents: write\n      packages: write  # list"),
    ("timeouts", "security-scan.yml", "    timeout-minutes: 15\n", ""),
    ("actions_pinned", "ci.yml", "actions/setup-python@a309ff8b426b58ec0e2a45f0f869d46889d02405  # v6.2.0", "actions/setup-python@v6"),
    ("actions_pinned", "release.yml", "cosign-installer@cad07c2e89fa2edd6e2d7bab4c1aa38e53f76003  # v4.1.1", "cosign-installer@cad07c2e89fa2edd6e2d7bab4c1aa38e53f76003"),
    ("actions_pinned", "retention.yml", "github-script@3a2844b7e9c422d3c10d287c895573f7108da1b3", "github-script@3a2844b7e9c422d3c10d287c895573f7108da1b"),
    ("pins_consistent", "ci.yml", "checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd  # v6.0.2", "checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8  # v5.0.0"),
    ("checkout_without_persisted_credentials", "release.yml", P, "persist-credentials: true"),
    ("checkout_without_persisted_credentials", "security-scan.yml", "        with:\n          " + P + "\n\n      - name: Trivy config", "\n      - name: Trivy config"),
    ("concurrency", "ci.yml", "cancel-in-progress: true", "cancel-in-progress: false"),
    ("concurrency", "release.yml", "cancel-in-progress: false", "cancel-in-progress: true"),
    ("concurrency", "security-scan.yml", "concurrency:\n", "x-concurrency:\n"),
    ("no_expressions_in_run", "release.yml", 'cosign sign --yes "${IMAGE}@${DIGEST}"', 'cosign sign --yes "${IMAGE}@${{ steps.build.outputs.digest }}"'),
    ("ci_triggers", "ci.yml", "  push:\n    branches: [main]\n", "  push:\n    branches: [develop]\n"),
    ("ci_swift_job", "ci.yml", "image: ${{ needs.base-images.outputs.swift_image }}", "image: swift:6.3-bookworm"),
    ("ci_swift_job", "../../docker/base-images/Dockerfile", "FROM swift:6.3-bookworm@", "FROM swift:6.0-bookworm@"),
    ("ci_swift_job", "ci.yml", "@postgres:5432/", "@localhost:5432/"),
    ("ci_swift_job", "ci.yml", "libsqlite3-dev sqlite3 make", "sqlite3 make"),
    ("ci_swift_job", "ci.yml", "run: make test-swift", "run: swift test"),
    ("ci_swift_job", "ci.yml", "image: ${{ needs.base-images.outputs.postgres_image }}", "image: postgres:16"),
    ("ci_swift_job", "../../docker/base-images/Dockerfile", "FROM postgres:16-bookworm@", "FROM postgres:15-bookworm@"),
    ("ci_swift_job", "ci.yml", "hashFiles('Package.swift') }}-${{", "hashFiles('Package.resolved') }}-${{"),
    ("ci_lint_job", "ci.yml", "run: make lint", "run: make check"),
    ("ci_lint_job", "ci.yml", 'PYTHON_VERSION: "3.11"', 'PYTHON_VERSION: "3.12"'),
    ("ci_kubernetes_job", "ci.yml", '"$bin_dir/pytest" -q -p no:cacheprovider integration/kubernetes', '"$bin_dir/pytest" -q integration/api'),
    ("ci_kubernetes_job", "ci.yml", "  kubernetes:\n    name: Kubernetes manifests", "  manifests:\n    name: Kubernetes manifests"),
    ("ci_containers_job", "ci.yml", "run: sudo --preserve-env=PATH make test-containers", "run: make test-e2e"),
    ("ci_containers_job", "ci.yml", "run: sudo --preserve-env=PATH make test-containers", "run: make test-containers"),
    ("service_list_jobs", "release.yml", "    permissions:\n      contents: read\n    outputs:\n      matrix:",
     "    permissions:\n      contents: read\n      packages: read\n    outputs:\n      matrix:"),
    ("service_list_jobs", "retention.yml", "      names: ${{ steps.list.outputs.names }}", "      names: ${{ steps.list.outputs.matrix }}"),
    ("service_list_jobs", "security-scan.yml", "  services:\n    name: Service list", "  service-list:\n    name: Service list"),
    ("service_list_jobs", "security-scan.yml", 'jq . <<< "${matrix}"', 'jq . <<< "${matrix}" >&2'),
    ("no_hard_coded_services", "security-scan.yml", "name: Trivy image scan (${{ matrix.service }})", f"name: Trivy image scan ({NAMES[0]})"),
    ("no_hard_coded_services", "release.yml", "# arm64 is built under QEMU emulation", f"# {NAMES[-1]}: arm64 is built under QEMU emulation"),
    ("image_matrix_from_service_list", "release.yml", "      matrix: ${{ fromJSON(needs.services.outputs.matrix) }}",
     f"      matrix:\n        service: [{', '.join(NAMES)}]"),
    ("image_matrix_from_service_list", "release.yml", "target: service\n", "target: ${{ matrix.service }}\n"),
    ("image_matrix_from_service_list", "security-scan.yml", "            PORT=${{ matrix.port }}\n", "            PORT=8000\n"),
    ("image_matrix_from_service_list", "security-scan.yml", "    needs: services\n    runs-on: ubuntu-latest\n    timeout-minutes: 60\n",
     "    runs-on: ubuntu-latest\n    timeout-minutes: 60\n"),
    ("image_matrix_from_service_list", "security-scan.yml", "      fail-fast: false\n      # include", "      fail-fast: true\n      # include"),
    ("image_matrix_from_service_list", "release.yml", "image.description=${{ matrix.description }}", "image.description=${{ matrix.desc }}"),
    ("no_runtime_base_images", "release.yml", "    env:\n      SERVICE: ${{ matrix.service }}\n",
     "    services:\n      registry:\n        image: registry:2\n        ports:\n          - 5000:5000\n    env:\n      SERVICE: ${{ matrix.service }}\n"),
    ("no_runtime_base_images", "security-scan.yml", "      # Built locally (not pushed)",
     "      - name: Build the runtime base image\n        uses: docker/build-push-action@bcafcacb16a39f128d818304e6c9c0c18556b85f  # v7.1.0\n"
     "        with:\n          context: docker/runtime\n          push: true\n          tags: localhost:5000/code-runtime-base:bookworm\n\n"
     "      # Built locally (not pushed)"),
    ("no_runtime_base_images", "release.yml", "            PORT=${{ matrix.port }}\n",
     "            PORT=${{ matrix.port }}\n            RUNTIME_IMAGE=localhost:5000/code-runtime-base:bookworm\n"),
    ("dockerfile_service_target", "../../docker/Dockerfile", "FROM runtime AS service", "FROM runtime AS code-service"),
    ("dockerfile_service_target", "../../docker/Dockerfile", "ARG DEBIAN_IMAGE=debian:bookworm-slim\n", "ARG DEBIAN_IMAGE=debian:bookworm-slim\nARG RUNTIME=base\n"),
    ("dockerfile_service_target", "../../docker/Dockerfile", "FROM runtime-rootfs AS runtime\n", "FROM runtime-rootfs AS runtime-base\n"),
    ("dockerfile_service_target", "../../docker/Dockerfile", "FROM ${DEBIAN_IMAGE} AS runtime-assemble",
     "FROM localhost:5000/code-runtime-base:bookworm AS runtime-assemble"),
    ("dockerfile_service_target", "../../docker/Dockerfile", "ARG DEBIAN_IMAGE=debian:bookworm-slim", "ARG DEBIAN_IMAGE=code-runtime-base:bookworm"),
    ("dockerfile_service_target", "../../docker/Dockerfile", 'ARG DESCRIPTION="A CODE service"\n', ""),
    ("service_list_behaviour", "release.yml", "{service: .name, port, description}", "{service: .name, port, description, runtime: \"base\"}"),
    ("service_list_behaviour", "retention.yml", '(.description | type) != "string" or (.description | test("[[:cntrl:]]"))',
     '(.description | type) != "string"'),
    ("service_list_behaviour", "security-scan.yml", 'test("\\\\A[a-z][a-z0-9]*(-[a-z0-9]+)*\\\\z")', 'test("^[a-z][a-z0-9]*(-[a-z0-9]+)*$")'),
    ("service_list_behaviour", "release.yml", "matrix=\"$(jq -c '", "matrix=\"$(jq '"),
    ("service_list_behaviour", "retention.yml", 'echo "names=${names}"', 'echo "names=${matrix}"'),
    ("service_list_behaviour", "security-scan.yml", "{service: .name, port, description}", "{service: .name, port}"),
    ("service_list_behaviour", "release.yml", ' or .port != (.port | floor) or .port < 1024 or .port > 65535', ""),
    ("service_list_behaviour", "retention.yml", '| if (map(.name) | unique | length) != length then fail("a name is listed twice") else . end\n', ""),
    ("release_triggers", "release.yml", 'tags: ["v*.*.*"]', 'tags: ["*"]'),
    ("release_triggers", "release.yml", '    branches: ["**", "!dependabot/**"]\n', '    branches: ["**"]\n'),
    ("release_matrix", "release.yml", "          file: docker/Dockerfile\n          # One", "          file: docker/Dockerfile.release\n          # One"),
    ("release_matrix", "release.yml", "password: ${{ secrets.GITHUB_TOKEN }}", "password: ${{ secrets.GHCR_PAT }}"),
    ("release_platforms", "release.yml", "target: service\n          platforms: linux/amd64,linux/arm64\n", "target: service\n          platforms: linux/amd64\n"),
    ("release_platforms", "release.yml", "linux/arm64\n          push: true\n", "linux/arm64\n          push: false\n"),
    ("release_tag_rules", "release.yml", "            type=semver,pattern={{major}}.{{minor}}\n", ""),
    ("release_tag_rules", "release.yml", "            type=semver,pattern={{major}}\n", ""),
    ("release_tag_rules", "release.yml", "latest=false", "latest=auto"),
    ("release_tag_rules", "release.yml", "value=latest,enable=${{ startsWith(github.ref, 'refs/tags/v') && !contains(github.ref_name, '-') }}", "value=latest"),
    ("release_tag_rules", "release.yml", " && !contains(github.ref_name, '-')", ""),
    ("release_tag_rules", "release.yml", "prefix=main-,format=long,enable={{is_default_branch}}", "prefix=main-,format=long"),
    ("release_tag_rules", "release.yml", "prefix=sha-,format=short", "prefix=sha-,format=long"),
    ("release_labels", "release.yml", "          annotations: |\n            org.opencontainers.image.title=${{ matrix.service }}\n", "          annotations: |\n"),
    ("release_labels", "release.yml", "            org.opencontainers.image.description=${{ matrix.description }}\n          annotations: |",
     "          annotations: |"),
    ("release_labels", "release.yml", "          annotations: ${{ steps.meta.outputs.annotations }}\n", ""),
    ("release_registry_cache", "release.yml", ":${{ env.CACHE_TAG }},mode=max", ":${{ env.CACHE_TAG }},mode=min"),
    ("release_registry_cache", "release.yml", "cache-from: |\n            type=registry,", "cache-from: |\n            type=gha,"),
    ("release_registry_cache", "release.yml", "&& 'buildcache' || 'buildcache-branches'", "&& 'buildcache' || 'buildcache'"),
    ("release_registry_cache", "release.yml", "no-cache-filters: runtime-assemble,libcurl-static", "no-cache-filters: runtime-assemble"),
    ("release_attestations", "release.yml", "provenance: mode=max", "provenance: mode=min"),
    ("release_attestations", "release.yml", "sbom: true", "sbom: false"),
    ("release_build_args", "release.yml", "CREATED=${{ fromJSON", "BUILT=${{ fromJSON"),
    ("release_signing_static", "release.yml", "          DIGEST: ${{ steps.staged.outputs.digest }}\n        run: |\n          case", "          DIGEST: ${{ steps.meta.outputs.version }}\n        run: |\n          case"),
    ("release_signing_static", "release.yml", "      - name: Install cosign\n", "      - name: Tag first\n        run: docker buildx imagetools create --help\n\n      - name: Install cosign\n"),
    ("release_signing_behaviour", "release.yml", 'cosign sign --yes "${IMAGE}@${DIGEST}"', 'cosign sign --yes "${IMAGE}:latest"'),
    ("release_signing_behaviour", "release.yml", 'cosign sign --yes "${IMAGE}@${DIGEST}"', 'cosign sign "${IMAGE}@${DIGEST}"'),
    ("release_signing_behaviour", "release.yml", "--certificate-oidc-issuer https://token.actions.githubusercontent.com", "--certificate-oidc-issuer-regexp '.*'"),
    ("release_signing_behaviour", "release.yml", "/\\\\.github/workflows/release\\\\.yml\"", "/\\\\.github/workflows/.*\""),
    ("release_signing_behaviour", "release.yml", '(heads/main|tags/v', '(heads/.*|tags/v'),
    ("release_signing_behaviour", "release.yml", 'repo_re="${GITHUB_REPOSITORY//./\\\\.}"', 'repo_re="${GITHUB_REPOSITORY}"'),
    ("scan_triggers", "security-scan.yml", '  schedule:\n    - cron: "23 4 * * 1"  # Mondays 04:23 UTC\n', ""),
    ("scan_images", "security-scan.yml", "severity: CRITICAL,HIGH\n          # Without", "severity: CRITICAL\n          # Without"),
    ("scan_images", "security-scan.yml", "          limit-severities-for-sarif: true\n          exit-code: \"0\"\n\n      # Pull", "          exit-code: \"0\"\n\n      # Pull"),
    ("scan_images", "security-scan.yml", "category: trivy-image-${{ matrix.service }}", "category: trivy-image"),
    ("scan_images", "security-scan.yml", "sarif_file: trivy-image-${{ matrix.service }}.sarif", "sarif_file: results.sarif"),
    ("scan_images", "security-scan.yml", "load: true", "load: false"),
    ("scan_config", "security-scan.yml", "          - directory: compose/logging\n            label: compose-logging\n", ""),
    ("scan_config", "security-scan.yml", "category: trivy-config-${{ matrix.label }}", "category: trivy-config"),
    ("scan_compose", "security-scan.yml", "        run: scripts/lint.sh compose\n", "        run: scripts/lint.sh compose || true\n"),
    ("scan_compose", "security-scan.yml", "        run: scripts/lint.sh compose\n", "        run: docker compose -f compose/compose.yaml config -q\n"),
    ("scan_compose", "security-scan.yml", "          - directory: compose/logging\n", "          - directory: compose\n"),
    ("release_gate", "release.yml", "    needs: [services, image, scan]\n    if: github.ref == 'refs/heads/main'", "    needs: [services, image]\n    if: github.ref == 'refs/heads/main'"),
    ("release_gate", "release.yml", "    needs: [services, image, scan]\n    if: github.ref_type", "    needs: [services, image]\n    if: github.ref_type"),
    ("release_gate", "release.yml", "    needs: [services, image, scan]\n    if: github.ref == 'refs/heads/main'", "    needs: [services, image, scan]\n    if: always()"),
    ("release_gate", "release.yml", "image-ref: ${{ steps.staged.outputs.image }}@${{ steps.staged.outputs.arm64 }}", "image-ref: ${{ steps.staged.outputs.image }}@${{ steps.staged.outputs.amd64 }}"),
    ("release_gate", "release.yml", "          ignore-unfixed: true\n          exit-code: \"1\"\n          skip-setup-trivy: true", "          ignore-unfixed: true\n          exit-code: \"0\"\n          skip-setup-trivy: true"),
    ("release_gate", "release.yml", "          severity: CRITICAL,HIGH\n          ignore-unfixed: true\n          exit-code: \"1\"\n\n", "          severity: CRITICAL\n          ignore-unfixed: true\n          exit-code: \"1\"\n\n"),
    ("release_gate", "release.yml", "      STAGING_TAG: staging-${{ github.sha }}-${{ github.run_id }}\n    steps:\n      - name: Set up Docker Buildx\n        uses: docker/setup-buildx-action@4d04d5d9486b7bd6fa91e7baf45bbb4f8b9deedd  # v4.0.0\n\n      # Trivy", "      STAGING_TAG: staging-${{ github.sha }}\n    steps:\n      - name: Set up Docker Buildx\n        uses: docker/setup-buildx-action@4d04d5d9486b7bd6fa91e7baf45bbb4f8b9deedd  # v4.0.0\n\n      # Trivy"),
    ("release_gate", "release.yml", "    if: github.ref_type == 'branch' && github.ref != 'refs/heads/main'\n", "    if: github.ref_type == 'branch'\n"),
    ("release_staged_digest_behaviour", "release.yml", "select(.platform.os == \"linux\" and .platform.architecture == $arch)", "select(.platform.architecture == $arch or true)"),
    ("release_staged_digest_behaviour", "release.yml", "for arch in amd64 arm64; do", "for arch in amd64; do"),
    ("release_feature_tag_behaviour", "release.yml", "branch=\"${branch:0:60}\"", "branch=\"${branch:0:200}\""),
    ("release_feature_tag_behaviour", "release.yml", "tr -c 'a-z0-9_.-' '-' | tr -s '-'", "tr '/' '-'"),
    ("release_feature_tag_behaviour", "release.yml", 'docker buildx imagetools create --tag "${image}:${TAG}" "${image}@${digest}"', 'docker buildx imagetools create --tag "${image}:${TAG}" "${image}:${STAGING_TAG}"'),
    ("release_publish_tags_behaviour", "release.yml", 'if [[ "${tagged}" != "${DIGEST}" ]]; then', 'if false; then'),
    ("release_publish_tags_behaviour", "release.yml", '*) echo "::error::unexpected tag ${tag}"; exit 1 ;;', '*) args+=(--tag "${tag}") ;;'),
    ("no_push_credentials_for_forks", "release.yml", "on:\n  push:\n", "on:\n  pull_request:\n  push:\n"),
    ("no_push_credentials_for_forks", "security-scan.yml", "    permissions:\n      contents: read\n    steps:\n      - name: Check out\n        uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd  # v6.0.2\n        with:\n          persist-credentials: false\n\n      - name: Set up Python",
     "    permissions:\n      contents: read\n      packages: write\n    steps:\n      - name: Check out\n        uses: actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd  # v6.0.2\n        with:\n          persist-credentials: false\n\n      - name: Set up Python"),
    ("base_image_lock", "../../docker/base-images/Dockerfile", "FROM debian:bookworm-slim@", "FROM debian:trixie-slim@"),
    ("base_image_lock", "../../docker/base-images/Dockerfile", "@sha256:abd67ffcfa541b485a3dff59865ab629aa048a6c613e639d36e7456b0b229241", "@sha256:abd67ffcfa541b485a3dff59865ab629"),
    ("base_image_lock", "../../docker/base-images/Dockerfile", " AS debian_image", " AS debian"),
    ("base_image_lock", "../../docker/Dockerfile", "ARG SWIFT_IMAGE=swift:6.3-bookworm", "ARG SWIFT_IMAGE=swift:6.2-bookworm"),
    ("base_image_lock", "release.yml", "            DEBIAN_IMAGE=${{ steps.base.outputs.debian_image }}\n", ""),
    ("base_image_lock", "security-scan.yml", "            SWIFT_IMAGE=${{ steps.base.outputs.swift_image }}\n", "            SWIFT_IMAGE=swift:6.3-bookworm\n"),
    ("base_image_lock", "ci.yml", "        run: scripts/ci/base-image-args.sh --pull\n", "        run: 'true'\n"),
    ("base_image_script_behaviour", "../../scripts/ci/base-image-args.sh", '    echo "base-image-args: $lock:$number: $name is pinned twice" >&2\n      exit 1', '    :'),
    ("base_image_script_behaviour", "../../scripts/ci/base-image-args.sh", 'docker pull --quiet "${repos[$i]}"', 'docker pull --quiet "${tags[$i]}"'),
    ("scan_config", "security-scan.yml", "scan-type: config", "scan-type: fs"),
    ("retention_triggers_and_dry_run", "retention.yml", "        type: boolean\n        default: true", "        type: boolean\n        default: false"),
    ("retention_triggers_and_dry_run", "retention.yml", "&& inputs.dry_run ||", "&& true ||"),
    ("retention_constants", "retention.yml", 'KEEP_MOST_RECENT: "10"', 'KEEP_MOST_RECENT: "5"'),
    ("retention_constants", "retention.yml", 'MAX_AGE_DAYS: "30"', 'MAX_AGE_DAYS: "90"'),
    ("retention_constants", "retention.yml", "PROTECTED_TAGS: latest stable", "PROTECTED_TAGS: latest"),
    ("retention_constants", "retention.yml", "PROTECTED_SEMVER_PATTERN: ^v?\\d", "PROTECTED_SEMVER_PATTERN: ^v\\d"),
    ("retention_constants", "retention.yml", "PROTECTED_ALIAS_PATTERN: ^v?\\d+(\\.\\d+)?$", "PROTECTED_ALIAS_PATTERN: ^v?\\d+(\\.\\d+)?"),
    ("retention_constants", "retention.yml", "PACKAGES: ${{ needs.services.outputs.names }}", f"PACKAGES: {' '.join(NAMES)}"),
    ("retention_constants", "retention.yml", "    needs: services\n    runs-on: ubuntu-latest\n    timeout-minutes: 30", "    runs-on: ubuntu-latest\n    timeout-minutes: 30"),
    ("retention_behaviour", "retention.yml", "keep.set(c.id, `referenced by kept ${v.name}`);", "void c;"),
    ("retention_behaviour", "retention.yml", "for (const pkg of PACKAGES) {", "for (const pkg of PACKAGES.slice(0, 1)) {"),
    ("retention_behaviour", "retention.yml", "const DRY_RUN = process.env.DRY_RUN !== 'false';", "const DRY_RUN = false;"),
    ("retention_behaviour", "retention.yml", "if (subject) {", "if (false) {"),
    ("retention_behaviour", "retention.yml", "else if (age <= GRACE_HOURS * 60 * 60 * 1000)", "else if (false)"),
    ("retention_behaviour", "retention.yml", "if (!res.ok) throw new Error(`manifest", "if (!res.ok) return []; if (0) throw new Error(`manifest"),
    ("retention_behaviour", "retention.yml", "if (failures > 0) core.setFailed", "if (false) core.setFailed"),
    ("retention_behaviour", "retention.yml", "?? (await github.rest.users.getByUsername({ username: owner })).data.type;", "?? 'User';"),
    ("dependabot", "../dependabot.yml", "package-ecosystem: swift", "package-ecosystem: npm"),
    ("dependabot", "../dependabot.yml", "directory: /docker/base-images", "directory: /docker"),
    ("actionlint", "ci.yml", "    timeout-minutes: 45\n", "    timeout-minutes: 45\n    bogus-key: 1\n"),
    ("actionlint", "release.yml", 'echo "name=ghcr.io/${owner}/${SERVICE}" >> "$GITHUB_OUTPUT"', 'echo name=ghcr.io/$owner/$SERVICE >> $GITHUB_OUTPUT'),
    ("zizmor", "ci.yml", "run: make test-swift", 'run: echo "${{ github.event.pull_request.title }}"'),
    ("zizmor", "release.yml", "        with:\n          persist-credentials: false\n", ""),
]


@pytest.mark.parametrize("check,file,old,new", MUTATIONS, ids=[f"{m[0]}:{i}" for i, m in enumerate(MUTATIONS)])
def test_check_can_fail(tmp_path: Path, check: str, file: str, old: str | None, new: str | None) -> None:
    shutil.copytree(ROOT / ".github", tmp_path / ".github")
    # What the checks read besides .github/: the service list and the Dockerfile the image jobs build.
    for extra in ("services.json", "docker/Dockerfile", "docker/base-images/Dockerfile", "scripts/ci/base-image-args.sh"):
        (tmp_path / extra).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / extra, tmp_path / extra)
    target = tmp_path / ".github" / "workflows" / file
    if old is None:
        target.unlink()
    else:
        text = target.read_text()
        assert old in text, f"mutation no longer applies, update it: {old!r} not in {file}"
        target.write_text(text.replace(old, new, 1))
    problems = CHECKS[check](tmp_path)
    assert problems, f"check {check} did not notice the edit to {file}: {old!r} -> {new!r}"


def test_every_check_has_a_mutation() -> None:
    covered = {m[0] for m in MUTATIONS}
    assert set(CHECKS) <= covered, f"checks without a breaking edit: {sorted(set(CHECKS) - covered)}"
