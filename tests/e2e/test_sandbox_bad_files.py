"""Bad uploads through the whole sandbox: a FAILED run with its code, and nothing created."""

import io
import json
from pathlib import Path

import pytest

from sandbox.cli import main
from tests.corpus.make_bad_files import CANARY_NAME, build_corpus

pytestmark = pytest.mark.e2e

CASES = ["not_gzip_text", "forbidden_os_system", "train_no_positive"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("corpus")
    return directory, build_corpus(directory)


@pytest.mark.parametrize("case", CASES)
def test_bad_file_run_fails(corpus, tmp_path, case):
    directory, cases = corpus
    if case not in cases:
        pytest.fail(f"corpus has no case {case!r}; cases: {sorted(cases)}")
    path, expected_code = cases[case]
    output = io.StringIO()

    exit_status = main(["run", str(path), "--results", str(tmp_path / "results")], stdout=output)

    assert exit_status == 1, output.getvalue()
    assert expected_code in output.getvalue()
    (run_dir,) = (tmp_path / "results").iterdir()
    summary = json.loads((run_dir / "sandbox-summary.json").read_text())
    assert summary["status"] == "FAILED"
    assert summary["tuning_jobs_created"] == 0
    assert summary["endpoints_created"] == 0
    status = json.loads((run_dir / "status.json").read_text())
    assert status["error_code"] == expected_code
    assert not list(directory.rglob(f"*{CANARY_NAME}*"))
    assert not list(Path.cwd().glob(f"{CANARY_NAME}*"))
