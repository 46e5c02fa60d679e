"""Usage errors of `python -m sandbox run`: exit 2 with a message that names the fix."""

import io
import json

import pytest

from sandbox.cli import _print_metrics, main
from sandbox.stack import Stack, TemplateError
from tests.e2e.conftest import ROOT


@pytest.fixture
def run_cli(capsys):
    """Run the CLI and return its exit status and what it wrote to stderr."""
    def run(*arguments: str) -> tuple[int, str]:
        status = main(["run", *arguments], stdout=io.StringIO())
        return status, capsys.readouterr().err
    return run


def test_directory_as_file(tmp_path, run_cli):
    folder = tmp_path / "data.pkl.gz"
    folder.mkdir()
    status, output = run_cli(str(folder), "--results", str(tmp_path / "r"))
    assert status == 2
    assert "is a directory" in output


def test_key_without_suffix(tmp_path, run_cli):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"x")
    status, output = run_cli(str(path), "--results", str(tmp_path / "r"))
    assert status == 2
    assert "--key NAME.pkl.gz" in output
    assert not (tmp_path / "r" / ".function-logs.jsonl").exists()


def test_key_too_long(tmp_path, run_cli):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(b"x")
    status, output = run_cli(str(path), "--results", str(tmp_path / "r"), "--key", "a" * 1018 + ".pkl.gz")
    assert status == 2
    assert "1025 bytes" in output


def test_key_not_utf8(tmp_path, run_cli):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(b"x")
    status, output = run_cli(str(path), "--results", str(tmp_path / "r"), "--key", "caf\udce9.pkl.gz")
    assert status == 2
    assert "not valid UTF-8" in output


def test_results_not_writable(tmp_path, run_cli):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(b"x")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    status, output = run_cli(str(path), "--results", str(blocker / "sub"))
    assert status == 2
    assert "not a writable directory" in output


@pytest.mark.parametrize(("name", "value", "word"), [("MaxJobs", "0", "MinValue"), ("MaxParallelJobs", "11", "MaxValue")])
def test_number_parameter_range(name, value, word):
    with pytest.raises(TemplateError, match=word):
        Stack.from_template(ROOT / "template.yaml", {name: value})


@pytest.mark.parametrize(("name", "value"), [("NamePrefix", "BAD"), ("KmsKeyArn", "not-an-arn")])
def test_string_parameter_pattern(name, value):
    with pytest.raises(TemplateError, match="AllowedPattern"):
        Stack.from_template(ROOT / "template.yaml", {name: value})


def test_infinite_range_rejected():
    from sandbox.tuning import check_parameter_ranges

    with pytest.raises(ValueError, match="finite"):
        check_parameter_ranges({"ContinuousParameterRanges": [{"Name": "wd", "MinValue": "1e-7", "MaxValue": "inf"}]})


def test_metrics_notes_printed(tmp_path):
    # Given a run's metrics.json with a note about its test split
    document = {"metrics": {"accuracy": 1.0, "roc_auc": None}, "notes": ["the test split has no positive rows"]}
    (tmp_path / "metrics.json").write_text(json.dumps(document), encoding="utf-8")
    out = io.StringIO()

    # When the CLI prints the metrics, Then the note follows them
    _print_metrics(tmp_path, out)

    assert out.getvalue().splitlines() == ["metrics: accuracy 1.0000", "note: the test split has no positive rows"]
