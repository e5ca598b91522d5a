"""The container lints of scripts/lint.sh, one test per check, and proof that each check can fail:
the same check on a copy of the repository with one breaking edit must report it."""
import os
import shutil
import sys
from pathlib import Path

import pytest

from .stacks import ROOT, run

pytestmark = pytest.mark.skipif(os.environ.get("CODE_E2E_SKIP_LINTS") == "1", reason="CODE_E2E_SKIP_LINTS=1")
VENV_BIN = str(Path(sys.executable).parent)
CHECKS = ["hadolint", "trivy", "compose", "shell", "yamllint", "seccomp", "promtool"]


def lint(root: Path, check: str):
    return run([str(root / "scripts" / "lint.sh"), check], timeout=300, check=False,
               env={**os.environ, "LINT_VENV_BIN": VENV_BIN, "TRIVY_CACHE_DIR": str(ROOT / "out" / "trivy-cache")})


@pytest.mark.parametrize("check", CHECKS)
def test_lint(check):
    result = lint(ROOT, check)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def append(path: str, text: str):
    def edit(root: Path):
        with open(root / path, "a") as f:
            f.write(text)
    return edit


def replace(path: str, old: str, new: str):
    def edit(root: Path):
        target = root / path
        content = target.read_text()
        assert old in content, (path, old)
        target.write_text(content.replace(old, new, 1))
    return edit


BREAKS = {
    "hadolint": append("docker/Dockerfile", "\nFROM runtime AS broken\n# hadolint ignore=DL3002\nUSER root\n"),
    "trivy": append("docker/runtime/postgres/Dockerfile", "\nUSER root\nRUN apt-get update && apt-get install -y curl\n"),
    "compose": replace("compose/compose.yaml", "read_only: true", "read_only: false"),
    "shell": append("scripts/dev-secrets.sh", "\necho $dir/*\n"),
    "yamllint": append("compose/compose.prod.yaml", "\nbroken:   \n"),
    "seccomp": replace("compose/seccomp/code-services.json", '"accept4"', '"mount", "accept4"'),
    # A threshold 100 times too high: the unit test's series no longer make the alert fire.
    "promtool": replace("compose/monitoring/prometheus/rules/code-services.yml", "> (14.4 * 0.005)", "> (14.4 * 0.5)"),
}


@pytest.mark.parametrize("check", CHECKS)
def test_lint_can_fail(check, tmp_path):
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns(".build", ".venv", "out", "secrets", "__pycache__", ".git", "Sources", "Tests")
    copy.mkdir()
    for item in ("compose", "deploy", "docker", "scripts", ".ci", ".github", "integration", "templates", ".yamllint.yaml", "services.json", ".env"):
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, copy / item, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, copy / item)
    assert lint(copy, check).returncode == 0, f"{check} fails on the unbroken copy: cannot tell"
    BREAKS[check](copy)
    result = lint(copy, check)
    assert result.returncode != 0, f"{check} did not notice the breaking edit:\n{result.stdout[-2000:]}"
