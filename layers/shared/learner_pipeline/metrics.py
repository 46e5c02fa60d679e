"""Binary classification metrics of the test split, computed with numpy alone.

The values match scikit-learn's ``confusion_matrix``, ``accuracy_score``, ``precision_score``,
``recall_score``, ``f1_score``, ``roc_auc_score`` and ``average_precision_score`` (the unit tests
compare them on random data). Undefined ratios are defined here instead of raising:

- precision is 0.0 when no row is predicted positive (scikit-learn's ``zero_division=0``);
- recall is 0.0 when no row is actually positive;
- f1 is 0.0 when precision and recall are both 0.0;
- roc_auc is None unless both classes occur in ``actual``, and pr_auc is None when no row is
  actually positive, because neither area exists then.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from learner_pipeline.errors import EvaluationError

CLASS_LABELS = (0, 1)
MAX_CURVE_POINTS = 200


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Count rows per (actual, predicted) pair: rows are actual labels, columns predicted ones.

    Both labels 0 and 1 are always present, as in ``pandas.crosstab(actual, predicted)`` over a
    split that contains both classes.
    """
    actual_labels, predicted_labels = _check_labels(actual, predicted)

    pair_codes = actual_labels * 2 + predicted_labels
    counts = np.bincount(pair_codes, minlength=4).reshape(2, 2)

    return {
        "labels": list(CLASS_LABELS),
        "rows": "actual",
        "columns": "predicted",
        "matrix": counts.tolist(),
    }


def confusion_matrix_csv(cm: dict[str, Any]) -> str:
    """Format a confusion matrix as CSV with the header ``actual\\predicted,0,1``."""
    labels = cm["labels"]
    lines = ["actual\\predicted," + ",".join(str(label) for label in labels)]

    for label, row in zip(labels, cm["matrix"], strict=True):
        lines.append(f"{label}," + ",".join(str(int(count)) for count in row))

    return "\n".join(lines) + "\n"


def binary_metrics(actual: np.ndarray, predicted: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    """Compute accuracy, precision, recall, f1, the four counts, ROC AUC and average precision.

    ``scores`` are the model's scores of the positive class, higher meaning more likely positive.
    """
    actual_labels, predicted_labels = _check_labels(actual, predicted)
    score_values = _check_scores(scores, actual_labels.size)

    true_positives = int(np.count_nonzero((actual_labels == 1) & (predicted_labels == 1)))
    false_positives = int(np.count_nonzero((actual_labels == 0) & (predicted_labels == 1)))
    true_negatives = int(np.count_nonzero((actual_labels == 0) & (predicted_labels == 0)))
    false_negatives = int(np.count_nonzero((actual_labels == 1) & (predicted_labels == 0)))
    count = int(actual_labels.size)

    precision = _ratio(true_positives, true_positives + false_positives)
    recall = _ratio(true_positives, true_positives + false_negatives)
    f1 = _ratio(2 * precision * recall, precision + recall)

    return {
        "count": count,
        "accuracy": (true_positives + true_negatives) / count,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_positives": true_positives,
        "false_positives": false_positives,
        "true_negatives": true_negatives,
        "false_negatives": false_negatives,
        "positives": true_positives + false_negatives,
        "negatives": true_negatives + false_positives,
        "roc_auc": _roc_auc(actual_labels, score_values),
        "pr_auc": _average_precision(actual_labels, score_values),
    }


def roc_curve(
    actual: np.ndarray, scores: np.ndarray, max_points: int = MAX_CURVE_POINTS
) -> dict[str, list[float | None]]:
    """Compute ROC points (false positive rate, true positive rate) for plotting.

    The curve starts at (0, 0) with threshold None and keeps at most ``max_points`` points,
    always including both ends. Raises EvaluationError unless both classes occur in ``actual``.
    """
    actual_labels, score_values = _check_curve_input(actual, scores)
    positives = int(actual_labels.sum())
    negatives = actual_labels.size - positives
    if positives == 0 or negatives == 0:
        raise EvaluationError(
            f"The ROC curve needs both classes in the actual labels, got {positives} positive "
            f"and {negatives} negative rows. Evaluate on a test split that contains both.",
            code="EVALUATION_ONE_CLASS",
        )

    true_positives, false_positives, thresholds = _cumulative_counts(actual_labels, score_values)
    fpr = np.concatenate(([0.0], false_positives / negatives))
    tpr = np.concatenate(([0.0], true_positives / positives))

    keep = _downsample_indices(fpr.size, max_points)
    threshold_list: list[float | None] = [None, *thresholds.tolist()]
    return {
        "fpr": fpr[keep].tolist(),
        "tpr": tpr[keep].tolist(),
        "thresholds": [threshold_list[index] for index in keep.tolist()],
    }


def pr_curve(
    actual: np.ndarray, scores: np.ndarray, max_points: int = MAX_CURVE_POINTS
) -> dict[str, list[float | None]]:
    """Compute precision-recall points for plotting, ordered by increasing recall.

    Like scikit-learn's ``precision_recall_curve`` the curve starts at recall 0 and precision 1
    (threshold None). It keeps at most ``max_points`` points, always including both ends.
    Raises EvaluationError when no row of ``actual`` is positive.
    """
    actual_labels, score_values = _check_curve_input(actual, scores)
    positives = int(actual_labels.sum())
    if positives == 0:
        raise EvaluationError(
            "The precision-recall curve needs at least one positive row in the actual labels. "
            "Evaluate on a test split that contains the positive class.",
            code="EVALUATION_ONE_CLASS",
        )

    true_positives, false_positives, thresholds = _cumulative_counts(actual_labels, score_values)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / positives

    recall = np.concatenate(([0.0], recall))
    precision = np.concatenate(([1.0], precision))

    keep = _downsample_indices(recall.size, max_points)
    threshold_list: list[float | None] = [None, *thresholds.tolist()]
    return {
        "recall": recall[keep].tolist(),
        "precision": precision[keep].tolist(),
        "thresholds": [threshold_list[index] for index in keep.tolist()],
    }


def _check_labels(actual: np.ndarray, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    actual_labels = _as_binary(actual, "actual")
    predicted_labels = _as_binary(predicted, "predicted")

    if actual_labels.shape != predicted_labels.shape:
        raise EvaluationError(
            f"The actual and predicted labels differ in length ({actual_labels.size} and "
            f"{predicted_labels.size}). Pass one prediction per test row.",
            code="EVALUATION_LENGTH_MISMATCH",
        )
    if actual_labels.size == 0:
        raise EvaluationError(
            "The test split has no rows, so there is nothing to evaluate. Upload a dataset with a "
            "non-empty test split.",
            code="EVALUATION_EMPTY",
        )

    return actual_labels, predicted_labels


def _as_binary(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise EvaluationError(
            f"The {name} labels must be a 1-D array, got shape {array.shape}.",
            code="EVALUATION_BAD_LABELS",
        )

    invalid = ~np.isin(array, CLASS_LABELS)
    if invalid.any():
        examples = np.unique(array[invalid])[:5].tolist()
        raise EvaluationError(
            f"The {name} labels must be 0 or 1, found {examples}. Binarize the labels first.",
            code="EVALUATION_BAD_LABELS",
        )

    return array.astype(np.int64)


def _check_scores(scores: np.ndarray, expected_rows: int) -> np.ndarray:
    score_values = np.asarray(scores, dtype=np.float64)

    if score_values.shape != (expected_rows,):
        raise EvaluationError(
            f"Expected {expected_rows} scores in a 1-D array, got shape {score_values.shape}.",
            code="EVALUATION_LENGTH_MISMATCH",
        )
    if not np.isfinite(score_values).all():
        raise EvaluationError(
            "Some scores are NaN or infinite. Check the model's output for those rows.",
            code="EVALUATION_BAD_SCORES",
        )

    return score_values


def _check_curve_input(actual: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    actual_labels = _as_binary(actual, "actual")
    if actual_labels.size == 0:
        raise EvaluationError(
            "A curve needs at least one row, but the test split is empty.", code="EVALUATION_EMPTY"
        )
    return actual_labels, _check_scores(scores, actual_labels.size)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def _cumulative_counts(
    actual_labels: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count true and false positives at each distinct score, from the highest score down.

    Rows with tied scores fall on the same side of every threshold, so only the last row of
    each run of equal scores gives a curve point (the method of scikit-learn's curves).
    """
    order = np.argsort(scores, kind="mergesort")[::-1]
    sorted_scores = scores[order]
    sorted_labels = actual_labels[order]

    distinct_ends = np.flatnonzero(np.diff(sorted_scores))
    threshold_indices = np.append(distinct_ends, sorted_labels.size - 1)

    true_positives = np.cumsum(sorted_labels)[threshold_indices].astype(np.float64)
    false_positives = (threshold_indices + 1) - true_positives
    return true_positives, false_positives, sorted_scores[threshold_indices]


def _roc_auc(actual_labels: np.ndarray, scores: np.ndarray) -> float | None:
    positives = int(actual_labels.sum())
    negatives = actual_labels.size - positives
    if positives == 0 or negatives == 0:
        return None

    true_positives, false_positives, _ = _cumulative_counts(actual_labels, scores)
    tpr = np.concatenate(([0.0], true_positives / positives))
    fpr = np.concatenate(([0.0], false_positives / negatives))
    return float(np.trapezoid(tpr, fpr))


def _average_precision(actual_labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Sum precision at each threshold weighted by the recall gained there (no interpolation)."""
    positives = int(actual_labels.sum())
    if positives == 0:
        return None

    true_positives, false_positives, _ = _cumulative_counts(actual_labels, scores)
    precision = true_positives / (true_positives + false_positives)
    recall_gain = np.diff(np.concatenate(([0.0], true_positives / positives)))
    return float(np.sum(recall_gain * precision))


def _downsample_indices(size: int, max_points: int) -> np.ndarray:
    if size <= max_points:
        return np.arange(size)
    return np.unique(np.linspace(0, size - 1, max(max_points, 2)).round().astype(np.int64))
