"""The result files of an evaluated run: metrics, confusion matrix and the HTML report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
from aws_lambda_powertools import Logger

from learner_pipeline.metrics import binary_metrics, confusion_matrix, confusion_matrix_csv

logger = Logger(child=True)

MAX_GALLERY_IMAGES = 48


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True, default=str).encode("utf-8")


def trial_rows(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten ListTrainingJobsForHyperParameterTuningJob summaries for the report and metrics.json."""
    rows = []
    for trial in trials:
        objective = trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        rows.append({
            "training_job": trial.get("TrainingJobName"),
            "status": trial.get("TrainingJobStatus"),
            "objective_metric": objective.get("MetricName"),
            "objective_value": objective.get("Value"),
            "hyperparameters": dict(trial.get("TunedHyperParameters") or {}),
        })
    return sorted(rows, key=lambda row: row["training_job"] or "")


def inferred_threshold(scores: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """Bound the endpoint's decision threshold from its predictions, because Linear Learner does not return it.

    The threshold lies above every score predicted 0 and at or below every score predicted 1.
    """
    negatives = scores[predicted == 0]
    positives = scores[predicted == 1]
    return {
        "above": float(negatives.max()) if negatives.size else None,
        "at_most": float(positives.min()) if positives.size else None,
    }


def endpoint_seconds(run: dict[str, Any], now: datetime | None = None) -> float | None:
    """Estimate how long the endpoint has existed: from the deploy step's timestamp until now."""
    started = run.get("deploying_at")
    if not started:
        return None
    elapsed = (now or datetime.now(UTC)) - datetime.fromisoformat(started)
    return round(elapsed.total_seconds(), 3)


def missing_class_notes(actual: np.ndarray, positive_label: int) -> list[str]:
    """List what readers of the metrics must know about a test split that lacks a class."""
    positives = int(np.count_nonzero(actual))
    if positives == actual.size:
        missing = f"negative rows (labels other than {positive_label}), so roc_auc is undefined"
    elif positives == 0:
        missing = (f"positive rows (label {positive_label}), so roc_auc and pr_auc are undefined and "
                   "recall is reported as 0")
    else:
        return []
    return [f"the test split has no {missing}, and the confusion matrix has one actual class only"]


def evaluate_predictions(*, run: dict[str, Any], manifest: dict[str, Any], features: np.ndarray, actual: np.ndarray,
                         predictions: Any, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Compute metrics and render every result file. Returns {"files": {name: (bytes, type)}, "summary": {...}}."""
    predicted = np.asarray(predictions.labels, dtype=np.int64)
    scores = np.asarray(predictions.scores, dtype=np.float64)
    metrics = binary_metrics(actual, predicted, scores)
    metrics["threshold"] = inferred_threshold(scores, predicted)
    matrix = confusion_matrix(actual, predicted)
    cost = predictions.cost()
    cost["endpoint_seconds"] = endpoint_seconds(run)
    rows = trial_rows(trials)
    metrics_document = {
        "run_id": run["run_id"],
        "positive_label": manifest["positive_label"],
        "source": manifest["source"],
        "metrics": metrics,
        "cost": cost,
        "best_training_job": run.get("best_training_job"),
        "best_hyperparameters": run.get("best_hyperparameters"),
        "trials": rows,
        "notes": missing_class_notes(actual, manifest["positive_label"]),
    }
    files: dict[str, tuple[bytes, str]] = {
        "metrics.json": (_json_bytes(metrics_document), "application/json"),
        "confusion_matrix.json": (_json_bytes(matrix), "application/json"),
        "confusion_matrix.csv": (confusion_matrix_csv(matrix).encode("utf-8"), "text/csv"),
    }
    summary = {key: metrics[key] for key in ("accuracy", "precision", "recall", "f1") if key in metrics}
    summary.update({f"invoke_{key}": value for key, value in cost.items()})

    try:
        html = render_run_report(run, manifest, features, actual, predicted, scores, metrics, matrix, rows, cost)
    except Exception as exc:  # noqa: BLE001 - the metrics above must survive a failing picture
        logger.exception("report rendering failed; metrics are still written", extra={"error": str(exc)})
        summary["report_error"] = str(exc)
    else:
        files["report.html"] = (html.encode("utf-8"), "text/html; charset=utf-8")
    return {"files": files, "summary": summary}


def render_run_report(run: dict[str, Any], manifest: dict[str, Any], features: np.ndarray, actual: np.ndarray,
                      predicted: np.ndarray, scores: np.ndarray, metrics: dict[str, Any], matrix: dict[str, Any],
                      trials: list[dict[str, Any]], cost: dict[str, Any]) -> str:
    # Imported here so that only rendering needs matplotlib, which the plotting layer provides.
    from learner_pipeline.report import ReportContext, render_report, select_misclassified

    wrong = select_misclassified(actual, predicted, scores, limit=MAX_GALLERY_IMAGES)
    image_shape = manifest.get("image_shape")
    source = manifest["source"]
    context = ReportContext(
        run_id=run["run_id"],
        source=f"s3://{source['bucket']}/{source['key']}",
        positive_label=manifest["positive_label"],
        created_at=run.get("created_at"),
        best_training_job=run.get("best_training_job"),
        hyperparameters=run.get("best_hyperparameters") or {},
        trials=trials,
        metrics=metrics,
        confusion_matrix=matrix,
        labels=actual,
        scores=scores,
        predicted=predicted,
        misclassified_images=features[wrong],
        misclassified_indices=wrong,
        misclassified_scores=scores[wrong],
        image_shape=tuple(image_shape) if image_shape else None,
        tuning_job_name=run.get("tuning_job_name"),
        endpoint_name=run.get("endpoint_name"),
        endpoint_usage=cost,
    )
    return render_report(context)
