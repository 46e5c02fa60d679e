"""Benchmark the sandbox end to end against a scikit-learn logistic regression.

For each dataset, ``python -m sandbox run FILE --results TMP --positive-label 0`` runs in a fresh
interpreter: the whole chain (prepare, 6 tuning trials of the local Linear Learner stand-in,
deploy, evaluate through the endpoint). Its wall time covers interpreter start-up and stack
creation. Its test accuracy comes from the run's metrics.json.

The reference is ``sklearn.linear_model.LogisticRegression(max_iter=200)`` fitted on the same
train split (labels binarized to "is it class 0") and scored on the same test split. It uses no
validation split and no tuning. The sandbox's numbers are those of the local stand-in, not of
the SageMaker Linear Learner container.

Run it alone from the repository root: ``.venv/bin/python -m benchmarks.bench_sandbox FILE``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
POSITIVE_LABEL = 0
LOGISTIC_MAX_ITER = 200


def run_sandbox(path: Path, positive_label: int = POSITIVE_LABEL) -> dict[str, object]:
    """Run the sandbox CLI on ``path`` in a fresh interpreter; return its wall time and metrics."""
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as results_root:
        command = [sys.executable, "-m", "sandbox", "run", str(path), "--results", results_root,
                   "--positive-label", str(positive_label)]
        start = time.perf_counter()
        completed = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        if completed.returncode != 0:
            raise RuntimeError(f"sandbox run on {path} failed (exit {completed.returncode}): "
                               f"{completed.stdout[-1500:]}{completed.stderr[-1500:]}")

        metrics_files = list(Path(results_root).glob("*/metrics.json"))
        if len(metrics_files) != 1:
            raise RuntimeError(f"expected one metrics.json under {results_root}, found {len(metrics_files)}")
        metrics = json.loads(metrics_files[0].read_text(encoding="utf-8"))["metrics"]

    return {"seconds": seconds, "accuracy": metrics["accuracy"], "f1": metrics["f1"], "count": metrics["count"]}


def run_logistic_regression(path: Path, positive_label: int = POSITIVE_LABEL) -> dict[str, object]:
    """Fit a logistic regression on the train split of ``path`` and score it on the test split."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    # The file is one this benchmark built itself, so a plain pickle.load is safe here.
    with gzip.open(path, "rb") as stream:
        (train_images, train_labels), _, (test_images, test_labels) = pickle.load(stream, encoding="latin1")
    train_target = (np.asarray(train_labels) == positive_label).astype(np.int64)
    test_target = (np.asarray(test_labels) == positive_label).astype(np.int64)

    model = LogisticRegression(max_iter=LOGISTIC_MAX_ITER)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(train_images, train_target)
    seconds = time.perf_counter() - start

    predicted = model.predict(test_images)
    converged = not any(issubclass(warning.category, ConvergenceWarning) for warning in caught)
    return {
        "seconds": seconds,
        "accuracy": float((predicted == test_target).mean()),
        "f1": float(f1_score(test_target, predicted)),
        "count": int(test_target.size),
        "converged": converged,
    }


def main(datasets: dict[str, Path]) -> dict[str, object]:
    """Run the sandbox and the logistic regression on each named dataset."""
    results: dict[str, object] = {}
    for name, path in datasets.items():
        sandbox = run_sandbox(path)
        logistic = run_logistic_regression(path)
        results[name] = {
            "file": str(path),
            "sandbox": sandbox,
            "logistic_regression": logistic,
            "accuracy_gap_points": 100 * (sandbox["accuracy"] - logistic["accuracy"]),
        }
    return results


def format_table(results: dict[str, object]) -> str:
    lines = [
        "| dataset | test rows | sandbox wall s | sandbox accuracy | sandbox F1 | "
        "logistic regression fit s | its accuracy | its F1 | accuracy gap, points |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, measured in results.items():
        sandbox = measured["sandbox"]
        logistic = measured["logistic_regression"]
        note = "" if logistic["converged"] else " (not converged)"
        lines.append(
            f"| {name} | {sandbox['count']:,} | {sandbox['seconds']:.1f} | {sandbox['accuracy']:.4f} | "
            f"{sandbox['f1']:.4f} | {logistic['seconds']:.1f}{note} | {logistic['accuracy']:.4f} | "
            f"{logistic['f1']:.4f} | {measured['accuracy_gap_points']:+.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, nargs="+", help="datasets in the tutorial's mnist.pkl.gz layout")
    arguments = parser.parse_args()
    print(format_table(main({path.name: path for path in arguments.file})))
