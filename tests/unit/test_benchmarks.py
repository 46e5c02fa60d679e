"""Smoke tests of the benchmark harness on tiny data: every step runs for real, only smaller."""

import gzip
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks import __main__ as bench_all
from benchmarks import bench_accuracy, bench_cold_start, bench_prepare, bench_recordio, bench_sandbox

TRAIN_ROWS, VALIDATION_ROWS, TEST_ROWS = 60, 20, 20
COLUMNS = 16


def _split(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    images = rng.random((rows, COLUMNS), dtype=np.float32)
    labels = np.arange(rows, dtype=np.int64) % 3  # every split contains class 0 and other classes
    return images, labels


@pytest.fixture(scope="module")
def tiny_pickle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    splits = (_split(rng, TRAIN_ROWS), _split(rng, VALIDATION_ROWS), _split(rng, TEST_ROWS))
    path = tmp_path_factory.mktemp("bench") / "tiny.pkl.gz"
    with gzip.open(path, "wb") as stream:
        pickle.dump(splits, stream, protocol=4)
    return path


@pytest.fixture(scope="module")
def prepare_results(tiny_pickle: Path) -> dict:
    # Two runs of ours, so a test can check that the server is emptied between runs.
    return bench_prepare.main(tiny_pickle, ours_runs=2, tutorial_runs=1)


@pytest.fixture(scope="module")
def recordio_results() -> dict:
    return bench_recordio.main(rows=50, columns=8, ours_runs=1, copy_runs=1, sdk_runs=1, measure_rss=False)


def test_prepare_bench_counts_rows(prepare_results: dict) -> None:
    assert prepare_results["rows"] == {"train": TRAIN_ROWS, "validation": VALIDATION_ROWS, "test": TEST_ROWS}


def test_prepare_bench_uploads_both(prepare_results: dict) -> None:
    uploaded = prepare_results["uploaded_bytes"]

    # Ours writes the test split too, so it uploads more than the recipe's two RecordIO files.
    assert uploaded["tutorial/s3"] > TRAIN_ROWS * COLUMNS * 4
    assert uploaded["ours/s3"] > uploaded["tutorial/s3"]


def test_prepare_bench_server_has_bodies(prepare_results: dict) -> None:
    # The server's listing is read in the child, so this checks that every body arrived.
    for variant in bench_prepare.VARIANTS:
        assert prepare_results["uploaded_bytes"][f"{variant}/s3"] == prepare_results["body_bytes"][f"{variant}/s3"]


def test_prepare_bench_discard_uploads_nothing(prepare_results: dict) -> None:
    for variant in bench_prepare.VARIANTS:
        assert prepare_results["uploaded_bytes"][f"{variant}/discard"] == 0
        assert prepare_results["body_bytes"][f"{variant}/discard"] == prepare_results["body_bytes"][f"{variant}/s3"]


def test_prepare_bench_server_emptied(prepare_results: dict) -> None:
    # Every run after the first would find the earlier run's objects if the server kept them.
    for name in ("ours/s3", "tutorial/s3"):
        for run in prepare_results["runs"][name]:
            assert run["objects_before"] == 0


def test_prepare_bench_reports_memory(prepare_results: dict) -> None:
    median = prepare_results["medians"]["ours/s3"]

    assert median["peak_mib"] >= median["baseline_mib"] > 0
    assert prepare_results["decoded_mib"] == pytest.approx(
        (TRAIN_ROWS + VALIDATION_ROWS + TEST_ROWS) * (COLUMNS * 4 + 8) / 2**20
    )


def test_prepare_bench_server_cpu(prepare_results: dict) -> None:
    # Tiny uploads can cost the server less than one clock tick, so only the field is checked here.
    for run in prepare_results["runs"]["ours/s3"]:
        assert run["server_cpu_seconds"] >= 0


def test_server_cpu_seconds_counts() -> None:
    # Given this test's own process read as if it were the server
    process = bench_prepare.MotoServer("http://127.0.0.1:1", os.getpid())
    before = process.cpu_seconds()

    # When it burns CPU for a quarter of a second
    deadline = time.process_time() + 0.25
    while time.process_time() < deadline:
        pass

    # Then the reading grows by about that much
    assert process.cpu_seconds() - before >= 0.2


def test_prepare_bench_table(prepare_results: dict) -> None:
    table = bench_prepare.format_table(prepare_results)

    assert "tutorial / ours, end to end (s3):" in table
    assert "tutorial / ours, compute only (discard):" in table
    assert "tutorial / S3 server CPU during ours" in table
    assert "| ours | s3 | 2 |" in table
    assert "| tutorial | discard | 1 |" in table


def test_fashion_source_missing_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no idx files and no apt-get on PATH
    monkeypatch.setenv("PATH", str(tmp_path))

    # When the benchmark looks for the data, Then it names the install command
    with pytest.raises(bench_prepare.FashionDataMissingError, match="apt-get install -y dataset-fashion-mnist"):
        bench_prepare.ensure_fashion_source(tmp_path / "missing")


def test_logistic_regression_scores_test_split(tiny_pickle: Path) -> None:
    measured = bench_sandbox.run_logistic_regression(tiny_pickle)

    assert measured["count"] == TEST_ROWS
    assert 0.0 <= measured["accuracy"] <= 1.0


def test_folder_bytes_sums_files(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "a.bin").write_bytes(b"x" * 10)
    (tmp_path / "nested" / "b.bin").write_bytes(b"y" * 5)

    assert bench_cold_start.folder_bytes(tmp_path) == 15


def test_results_page_from_real_runs(prepare_results: dict, recordio_results: dict, tiny_pickle: Path,
                                     accuracy_results: dict) -> None:
    # Given real measurements on tiny data, and a cold import measured once
    logistic = bench_sandbox.run_logistic_regression(tiny_pickle)
    sandbox = {"tiny": {"sandbox": {**logistic}, "logistic_regression": logistic, "accuracy_gap_points": 0.0}}
    results = {
        "machine": bench_all.machine(),
        "recordio": recordio_results,
        "prepare": prepare_results,
        "imports": bench_cold_start.measure_imports(runs=1),
        "sandbox": sandbox,
        "accuracy": accuracy_results,
    }

    # When the page is rendered
    page = bench_all.render(results, seconds=1.0)

    # Then every section is there, with the machine and the build marked as skipped
    assert page.startswith("# Benchmark results")
    assert f"numpy {np.__version__}" in page
    assert "| PrepareFunction | 1 |" in page
    assert "Not measured in this run" in page
    assert "| tiny | 20 |" in page
    assert "## 6. Tuned accuracy over shuffles" in page


@pytest.fixture(scope="module")
def accuracy_results() -> dict:
    # Two well separated classes, so every tuning learns them: label 0 has bright first pixels.
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 3
    images = rng.random((300, COLUMNS), dtype=np.float32) * 0.5
    images[labels == 0, :4] += 0.5
    return bench_accuracy.main(split_seeds=(0, 1), tuning_seeds=(0, 1), digits=(images, labels), sizes=(150, 75, 75))


def test_accuracy_bench_counts_tunings(accuracy_results: dict) -> None:
    assert accuracy_results["tunings"] == 4
    assert [split["split_seed"] for split in accuracy_results["splits"]] == [0, 1]


def test_accuracy_bench_learns_separable(accuracy_results: dict) -> None:
    # Then the tuned stand-in and the reference both separate the classes
    assert accuracy_results["mean"] >= 0.95
    assert accuracy_results["logistic_regression_mean"] >= 0.95


def test_accuracy_bench_table(accuracy_results: dict) -> None:
    table = bench_accuracy.format_table(accuracy_results)

    assert "| 0 | 2 |" in table
    assert "All 4 tunings:" in table
