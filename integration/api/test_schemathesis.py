"""Property-based testing of code-api against its own OpenAPI document with Schemathesis.

At least 1,000 generated requests (coverage, fuzzing and stateful phases, with every check but the
ones integration/api/schemathesis.toml disables, each with its reason): no 5xx and no response that
violates the document.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MINIMUM_TEST_CASES = 1000


def test_schemathesis_finds_no_server_error_and_no_contract_violation(api, workdir):
    report = workdir / "schemathesis.json"
    schemathesis = Path(sys.executable).parent / "schemathesis"
    command = [
        str(schemathesis), "--config-file", str(HERE / "schemathesis.toml"), "run", f"{api.url}/openapi.yaml",
        "--header", f"Authorization: Bearer {api.admin_key}",
        "--max-examples", os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "80"),
        "--seed", os.environ.get("SCHEMATHESIS_SEED", "20261129"),
        "--request-timeout", "10",
        "--report", "json", "--report-json-path", str(report),
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=900)
    summary = json.loads(report.read_text())
    assert result.returncode == 0, result.stdout[-8000:]
    assert summary["failures"] == [] and summary["errors"] == [], result.stdout[-8000:]
    assert summary["operations"]["tested"] == summary["operations"]["total"]
    assert summary["test_cases"]["generated"] >= MINIMUM_TEST_CASES, summary["test_cases"]
    assert all(phase["status"] == "success" for name, phase in summary["phases"].items() if name != "examples"), summary["phases"]
    assert summary["warnings"]["missing_auth"] == [], "the admin key must reach every operation"
    print(f"schemathesis: {summary['test_cases']['generated']} test cases, {summary['operations']['tested']} operations, no failures")
