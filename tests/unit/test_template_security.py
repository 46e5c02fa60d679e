"""checkov on template.yaml: every failed check fails the test unless its resource skips it with a reason.

checkov does not fit in the project venv: pip resolves checkov 3.3.30 with boto3 1.35.49, older
than the venv's 1.43, and with the venv's boto3 pinned it falls back to checkov 2.1 and jsonschema
3.2. So the test runs checkov as a command from its own venv, found through $CHECKOV, then
ROOT/.venv-checkov/bin/checkov, then PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sandbox.template import read_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# A reason shorter than this is a placeholder, not a justification.
MIN_REASON_CHARS = 30


def checkov_command() -> str | None:
    candidates = [os.environ.get("CHECKOV"), str(ROOT / ".venv-checkov" / "bin" / "checkov"), shutil.which("checkov")]
    return next((path for path in candidates if path and Path(path).is_file()), None)


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    command = checkov_command()
    if command is None:
        pytest.skip("checkov not found: python3.13 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov")

    # Offline: no update check against PyPI and no download of policy metadata (checked with strace).
    environment = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    completed = subprocess.run(
        [command, "--file", str(TEMPLATE), "--framework", "cloudformation", "--output", "json", "--compact",
         "--skip-download"],
        capture_output=True, text=True, timeout=300, check=False, env=environment,
    )
    # checkov exits 1 when a check fails. The JSON report is on stdout either way.
    assert completed.returncode in (0, 1), f"checkov failed to run:\n{completed.stderr[-2000:]}"
    report = json.loads(completed.stdout)
    return report[0] if isinstance(report, list) else report


def suppressions() -> list[tuple[str, str, str]]:
    """Return (resource, check id, reason) for every checkov skip in the template's Metadata."""
    found = []
    for logical_id, resource in read_template(TEMPLATE)["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found.append((logical_id, str(skip.get("id", "")), str(skip.get("comment", ""))))
    return found


def test_checkov_parses_template(checkov_report):
    assert checkov_report["summary"]["parsing_errors"] == 0


def test_checkov_no_failed_checks(checkov_report):
    failed = [f"{check['check_id']} {check['resource']}: {check['check_name']}"
              for check in checkov_report["results"]["failed_checks"]]
    assert failed == [], ("checkov failed checks; fix them or skip them on the resource with a one-line reason "
                          "(Metadata: checkov: skip: - id, comment):\n" + "\n".join(failed))


def test_checkov_ran_checks(checkov_report):
    assert checkov_report["summary"]["passed"] > 0


@pytest.mark.parametrize(("resource", "check_id", "reason"), suppressions())
def test_suppression_has_reason(resource, check_id, reason):
    assert check_id.startswith("CKV_"), f"{resource} skips {check_id!r}, which is not a checkov check id"
    assert len(reason) >= MIN_REASON_CHARS, f"{resource} skips {check_id} without a reason"


def test_suppressions_all_apply(checkov_report):
    # A skip checkov does not report as skipped is stale (the check passes or no longer exists).
    applied = {(check["resource"].rsplit(".", 1)[-1], check["check_id"])
               for check in checkov_report["results"]["skipped_checks"]}
    stale = [f"{resource} {check_id}" for resource, check_id, _ in suppressions() if (resource, check_id) not in applied]
    assert stale == [], "checkov skips that no longer apply; remove them:\n" + "\n".join(stale)
