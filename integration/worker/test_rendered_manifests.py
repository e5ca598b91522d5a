"""The manifests the worker renders, validated by the tools that consume them: kubernetes-validate
(PyPI, strict, against the Kubernetes schema) and `docker compose config` (the Compose v2 binary)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import new_key
from containers.workload import API

DIGEST = "sha256:" + "ab" * 32
CASES = [
    ("development", "rolling", "ghcr.io/acme/web:1.0.0"),
    ("staging", "recreate", "ghcr.io/acme/api:2.3.4"),
    ("production", "blue_green", f"ghcr.io/acme/billing@{DIGEST}"),
    ("production", "canary", f"registry.example.com:5000/team/search:9.1@{DIGEST}"),
]


def compose_command():
    """`docker compose` when a Docker CLI with the plugin is present, else the Compose binary from PyPI."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return [str(Path(sys.executable).parent / "docker-compose")]


@pytest.fixture
def rendered(services, workdir):
    admin = new_key()
    database = f"sqlite://{workdir}/code.db"
    api = services("code-api", {"DATABASE_URL": database, "CODE_ADMIN_KEY": admin})
    services("code-worker", {"DATABASE_URL": database, "CODE_SIMULATED_STEP_MS": "1"})
    client = API(api.url, admin)
    results = []
    for index, (environment, strategy, image) in enumerate(CASES):
        deployment = client.create(
            service=f"svc{index}", image=image, environment=environment, strategy=strategy, replicas=index + 1,
            labels={"team": "core", "app.kubernetes.io/part-of": "shop"},
        )
        assert client.wait(deployment["id"])["status"] == "succeeded"
        status, manifests = client.call("GET", f"/v1/deployments/{deployment['id']}/manifests")[:2]
        assert status == 200, manifests
        results.append((deployment, manifests))
    return results


def test_kubernetes_manifests_pass_strict_schema_validation(rendered, workdir):
    validate = Path(sys.executable).parent / "kubernetes-validate"
    for deployment, manifests in rendered:
        path = workdir / f"{deployment['service']}-k8s.yaml"
        path.write_text(manifests["kubernetes"])
        result = subprocess.run([str(validate), "--strict", str(path)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        kinds = [document["kind"] for document in yaml.safe_load_all(manifests["kubernetes"])]
        assert kinds == ["Deployment", "Service"]


def test_compose_manifests_pass_docker_compose_config(rendered, workdir):
    for deployment, manifests in rendered:
        path = workdir / f"{deployment['service']}-compose.yaml"
        path.write_text(manifests["compose"])
        result = subprocess.run(compose_command() + ["-f", str(path), "config", "--quiet"], capture_output=True, text=True, timeout=60,
                                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir)})
        assert result.returncode == 0, result.stdout + result.stderr
        service = yaml.safe_load(manifests["compose"])["services"][deployment["service"]]
        assert service["deploy"]["replicas"] == deployment["replicas"]
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
