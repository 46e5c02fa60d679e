"""The evaluation report: one self-contained HTML page per run.

The page loads nothing from outside: pictures are inline base64 PNGs, styles are inline, and a
Content-Security-Policy meta tag blocks scripts and any other source. Every string that comes
from the data or the run is HTML-escaped, because file names are user-controlled.

Pictures come from matplotlib, which only the evaluate function's plotting layer ships. It is
imported inside the functions that draw, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from learner_pipeline.errors import EvaluationError
from learner_pipeline.metrics import confusion_matrix, pr_curve, roc_curve

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GALLERY_LIMIT = 48
OBJECTIVE_METRIC = "validation:binary_f_beta"
HISTOGRAM_BINS = 40

# Colours of the two classes in every chart: tab:blue and tab:orange of matplotlib's default cycle.
POSITIVE_COLOUR = "#ff7f0e"
NEGATIVE_COLOUR = "#1f77b4"

_PNG_METADATA = {"Software": None}  # drops matplotlib's default "Software" text chunk


@dataclass(frozen=True)
class ReportContext:
    """Everything the report shows about one run.

    ``labels``, ``predicted`` and ``scores`` cover the whole test split.
    ``misclassified_indices`` indexes into them, and ``misclassified_images`` contains the
    features of those rows in the same order (``select_misclassified`` picks them).
    ``misclassified_scores`` defaults to ``scores[misclassified_indices]``, and
    ``confusion_matrix`` (the output of ``metrics.confusion_matrix``) is computed when omitted.

    ``trials`` are SageMaker TrainingJobSummary dicts, as
    ListTrainingJobsForHyperParameterTuningJob returns them, or the same facts flattened with
    the keys ``training_job``, ``status``, ``objective_metric``, ``objective_value`` and
    ``hyperparameters``.
    """

    run_id: str
    source: str
    positive_label: int | str
    metrics: Mapping[str, Any]
    labels: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    trials: Sequence[Mapping[str, Any]] = ()
    confusion_matrix: Mapping[str, Any] | None = None
    misclassified_indices: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    misclassified_images: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    misclassified_scores: np.ndarray | None = None
    image_shape: tuple[int, int] | None = None
    created_at: datetime | str | None = None
    finished_at: datetime | str | None = None
    tuning_job_name: str | None = None
    best_training_job: str | None = None
    endpoint_name: str | None = None
    objective_metric: str = OBJECTIVE_METRIC
    endpoint_usage: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Trial:
    name: str
    status: str
    objective: float | None
    hyperparameters: Mapping[str, Any]
    metric_name: str | None


def select_misclassified(
    actual: np.ndarray, predicted: np.ndarray, scores: np.ndarray, limit: int = GALLERY_LIMIT
) -> np.ndarray:
    """Return the indices of up to ``limit`` misclassified rows, the most confident errors first.

    A false positive with score 0.99 comes before one with score 0.51, and a false negative
    with score 0.01 before one with score 0.49.
    """
    actual_labels = np.asarray(actual)
    wrong = np.flatnonzero(actual_labels != np.asarray(predicted))

    distance = np.abs(np.asarray(scores, dtype=np.float64)[wrong] - actual_labels[wrong])
    order = np.argsort(-distance, kind="stable")
    return wrong[order[:limit]]


def render_report(context: ReportContext) -> str:
    """Render the report of one run as a self-contained HTML page."""
    _check_context(context)

    sections = [
        _run_section(context),
        _metrics_section(context),
        _curves_section(context),
        _histogram_section(context),
        _tuning_section(context),
        _gallery_section(context),
    ]

    title = f"Evaluation report of run {context.run_id}"
    return _PAGE_TEMPLATE.format(
        title=_escape(title),
        style=_STYLE,
        positive=_escape(context.positive_label),
        source=_escape(context.source),
        body="\n".join(sections),
    )


# --- sections -------------------------------------------------------------------------------


def _run_section(context: ReportContext) -> str:
    facts: list[tuple[str, Any]] = [
        ("Run id", context.run_id),
        ("Source file", context.source),
        ("Positive class", f"class 1 is label {context.positive_label}; class 0 is every other label"),
        ("Created", _format_time(context.created_at)),
        ("Finished", _format_time(context.finished_at)),
        ("Tuning job", context.tuning_job_name),
        ("Best training job", context.best_training_job),
        ("Endpoint", context.endpoint_name),
    ]

    usage = context.endpoint_usage
    if usage:
        facts.append(
            (
                "Endpoint usage",
                f"InvokeEndpoint calls: {usage.get('calls')} for {usage.get('rows')} rows, "
                f"sent: {_format_bytes(usage.get('bytes_sent'))}, retries: {usage.get('retries')}, "
                f"time: {usage.get('seconds')} s",
            )
        )
        if usage.get("endpoint_seconds") is not None:
            facts.append(("Endpoint lifetime", f"about {usage['endpoint_seconds']:.0f} s from creation to evaluation"))
    threshold = context.metrics.get("threshold")
    if isinstance(threshold, dict) and None not in (threshold.get("above"), threshold.get("at_most")):
        facts.append(("Decision threshold",
                      f"between {threshold['above']:.4f} and {threshold['at_most']:.4f} (inferred from the scores)"))

    rows = "".join(
        f"<tr><th scope='row'>{_escape(name)}</th><td>{_escape(value)}</td></tr>"
        for name, value in facts
        if value is not None
    )
    return f"<section id='run'><h2>Run</h2><table class='facts'>{rows}</table></section>"


def _metrics_section(context: ReportContext) -> str:
    metrics = context.metrics
    scores = [
        ("Accuracy", metrics.get("accuracy")),
        ("Precision", metrics.get("precision")),
        ("Recall", metrics.get("recall")),
        ("F1", metrics.get("f1")),
        ("ROC AUC", metrics.get("roc_auc")),
        ("PR AUC (average precision)", metrics.get("pr_auc")),
    ]
    counts = [
        ("Test rows", metrics.get("count")),
        ("True positives", metrics.get("true_positives")),
        ("False positives", metrics.get("false_positives")),
        ("True negatives", metrics.get("true_negatives")),
        ("False negatives", metrics.get("false_negatives")),
    ]

    score_rows = "".join(
        f"<tr><th scope='row'>{_escape(name)}</th><td class='num'>{_format_metric(value)}</td></tr>"
        for name, value in scores
    )
    count_rows = "".join(
        f"<tr><th scope='row'>{_escape(name)}</th><td class='num'>{_escape(value)}</td></tr>"
        for name, value in counts
    )
    note = (
        "<p class='note'>Precision is 0 when nothing is predicted positive, recall is 0 when "
        "no row is positive, and n/a marks an area that needs both classes.</p>"
    )
    heatmap = _image_tag(
        _confusion_heatmap_png(context),
        "Confusion matrix heatmap: rows are actual labels, columns predicted labels",
    )

    return (
        "<section id='metrics'><h2>Metrics</h2><div class='row'>"
        f"<div><table class='facts'>{score_rows}{count_rows}</table>{note}</div>"
        f"<figure id='confusion-matrix'>{heatmap}"
        "<figcaption>Confusion matrix: rows are actual labels, columns predicted labels."
        "</figcaption></figure>"
        "</div></section>"
    )


def _curves_section(context: ReportContext) -> str:
    roc = _figure_or_reason(lambda: _roc_png(context), "ROC curve of the test split", "roc-curve")
    pr = _figure_or_reason(
        lambda: _pr_png(context), "Precision-recall curve of the test split", "pr-curve"
    )
    return (
        "<section id='curves'><h2>ROC and precision-recall curves</h2>"
        f"<div class='row'>{roc}{pr}</div></section>"
    )


def _histogram_section(context: ReportContext) -> str:
    picture = _image_tag(
        _histogram_png(context), "Histogram of the scores of each actual class"
    )
    return (
        "<section id='score-histogram'><h2>Scores per actual class</h2>"
        f"<figure>{picture}<figcaption>Scores of the positive class, counted per actual "
        "label, on a log scale.</figcaption></figure></section>"
    )


def _tuning_section(context: ReportContext) -> str:
    best = "".join(
        f"<tr><th scope='row'>{_escape(name)}</th><td>{_escape(value)}</td></tr>"
        for name, value in sorted(context.hyperparameters.items())
    )
    best_table = (
        f"<table class='facts'>{best}</table>"
        if best
        else "<p>No hyperparameters were recorded for the best training job.</p>"
    )

    trials = sorted(
        (_read_trial(trial) for trial in context.trials),
        key=lambda trial: (trial.objective is None, -(trial.objective or 0.0), trial.name),
    )
    tuned_names = sorted({name for trial in trials for name in trial.hyperparameters})
    metric_name = next(
        (trial.metric_name for trial in trials if trial.metric_name), context.objective_metric
    )
    header = "".join(
        f"<th scope='col'>{_escape(name)}</th>"
        for name in ["Training job", "Status", metric_name, *tuned_names]
    )

    body_rows = []
    for trial in trials:
        css_class = " class='best'" if trial.name == context.best_training_job else ""
        cells = [
            _escape(trial.name),
            _escape(trial.status),
            _format_metric(trial.objective),
            *(_escape(trial.hyperparameters.get(name, "")) for name in tuned_names),
        ]
        body_rows.append(f"<tr{css_class}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")

    trials_table = (
        f"<table class='grid'><thead><tr>{header}</tr></thead><tbody>{''.join(body_rows)}</tbody></table>"
        if body_rows
        else "<p>No tuning trials were recorded.</p>"
    )

    return (
        "<section id='tuning'><h2>Hyperparameter tuning</h2>"
        f"<h3>Best hyperparameters</h3>{best_table}"
        f"<h3>Trials ({len(trials)}), highest objective first</h3>{trials_table}</section>"
    )


def _gallery_section(context: ReportContext) -> str:
    indices = np.asarray(context.misclassified_indices, dtype=np.int64)
    heading = f"<h2>Misclassified test rows ({len(indices)} shown of {_error_count(context)})</h2>"
    if indices.size == 0:
        return f"<section id='misclassified'>{heading}<p>No misclassified row to show.</p></section>"

    shape = _image_shape(context)
    scores = _gallery_scores(context, indices)
    items = []
    for position, row in enumerate(indices.tolist()):
        caption = (
            f"row {row}: actual {int(context.labels[row])}, predicted "
            f"{int(context.predicted[row])}, score {float(scores[position]):.3f}"
        )
        if shape is None:
            items.append(f"<li><span>{_escape(caption)}</span></li>")
            continue

        picture = _image_tag(
            _digit_png(np.asarray(context.misclassified_images[position]).reshape(shape)),
            caption,
            css_class="digit",
        )
        items.append(
            f"<li><figure>{picture}<figcaption>{_escape(caption)}</figcaption></figure></li>"
        )

    note = (
        ""
        if shape is not None
        else "<p>The features are not a square image, so only the rows are listed.</p>"
    )
    return (
        f"<section id='misclassified'>{heading}{note}"
        f"<ul class='gallery'>{''.join(items)}</ul></section>"
    )


# --- pictures -------------------------------------------------------------------------------


def _confusion_heatmap_png(context: ReportContext) -> bytes:
    counts = context.confusion_matrix or confusion_matrix(context.labels, context.predicted)
    matrix = np.array(counts["matrix"])
    names = _class_names(context)

    figure = _new_figure(4.2, 3.6)
    axes = figure.subplots()
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)

    axes.set_xticks([0, 1], labels=names)
    axes.set_yticks([0, 1], labels=names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    threshold = matrix.max() / 2
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=13)

    return _png_bytes(figure)


def _roc_png(context: ReportContext) -> bytes:
    curve = roc_curve(context.labels, context.scores)
    auc = context.metrics.get("roc_auc")

    figure = _new_figure(4.6, 4.0)
    axes = figure.subplots()
    axes.plot(curve["fpr"], curve["tpr"], color=NEGATIVE_COLOUR, label=f"model (AUC {_format_metric(auc)})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower right")
    return _png_bytes(figure)


def _pr_png(context: ReportContext) -> bytes:
    curve = pr_curve(context.labels, context.scores)
    average_precision = context.metrics.get("pr_auc")
    positive_rate = float(np.mean(np.asarray(context.labels) == 1))

    figure = _new_figure(4.6, 4.0)
    axes = figure.subplots()
    axes.step(
        curve["recall"],
        curve["precision"],
        where="post",
        color=POSITIVE_COLOUR,
        label=f"model (AP {_format_metric(average_precision)})",
    )
    axes.axhline(positive_rate, linestyle="--", color="grey", label=f"chance ({positive_rate:.3f})")
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.legend(loc="lower left")
    return _png_bytes(figure)


def _histogram_png(context: ReportContext) -> bytes:
    labels = np.asarray(context.labels)
    scores = np.asarray(context.scores, dtype=np.float64)
    low = min(0.0, float(scores.min()))
    high = max(1.0, float(scores.max()))
    bins = np.linspace(low, high, HISTOGRAM_BINS + 1)

    figure = _new_figure(9.0, 3.4)
    axes = figure.subplots()
    axes.hist(
        scores[labels == 0],
        bins=bins,
        alpha=0.6,
        color=NEGATIVE_COLOUR,
        label=f"actual {_class_names(context)[0]}",
    )
    axes.hist(
        scores[labels == 1],
        bins=bins,
        alpha=0.6,
        color=POSITIVE_COLOUR,
        label=f"actual {_class_names(context)[1]}",
    )
    axes.set_yscale("log")
    axes.set_xlabel("score")
    axes.set_ylabel("rows")
    axes.legend(loc="upper center")
    return _png_bytes(figure)


def _digit_png(image: np.ndarray) -> bytes:
    from matplotlib import image as matplotlib_image

    buffer = io.BytesIO()
    matplotlib_image.imsave(buffer, image, cmap="gray_r", format="png", metadata=_PNG_METADATA)
    return buffer.getvalue()


def _new_figure(width: float, height: float) -> Figure:
    """Create a figure on the Agg canvas without pyplot, whose global state is not thread-safe."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata=_PNG_METADATA, bbox_inches="tight")
    return buffer.getvalue()


# --- helpers --------------------------------------------------------------------------------


def _check_context(context: ReportContext) -> None:
    rows = np.asarray(context.labels).shape[0]
    for name in ("predicted", "scores"):
        length = np.asarray(getattr(context, name)).shape[0]
        if length != rows:
            raise EvaluationError(
                f"The report needs one {name} value per test row, got {length} for {rows} rows.",
                code="EVALUATION_REPORT_INPUT",
            )

    indices = np.asarray(context.misclassified_indices)
    if indices.size == 0:
        return

    images = np.asarray(context.misclassified_images)
    if images.shape[0] != indices.size:
        raise EvaluationError(
            f"The report got {images.shape[0]} misclassified images for {indices.size} "
            "misclassified rows. Pass the features of exactly those rows, in the same order.",
            code="EVALUATION_REPORT_INPUT",
        )
    if indices.min() < 0 or indices.max() >= rows:
        raise EvaluationError(
            f"Misclassified row indices must lie in [0, {rows}), got {indices.min()} to "
            f"{indices.max()}.",
            code="EVALUATION_REPORT_INPUT",
        )

    shape = context.image_shape
    if shape is not None and math.prod(shape) != images.shape[-1]:
        raise EvaluationError(
            f"The image shape {tuple(shape)} does not match {images.shape[-1]} features. Pass "
            "the shape of one image, such as (28, 28) for 784 features, or None.",
            code="EVALUATION_REPORT_INPUT",
        )


def _gallery_scores(context: ReportContext, indices: np.ndarray) -> np.ndarray:
    if context.misclassified_scores is None:
        return np.asarray(context.scores, dtype=np.float64)[indices]

    scores = np.asarray(context.misclassified_scores, dtype=np.float64)
    if scores.shape != indices.shape:
        raise EvaluationError(
            f"The report got {scores.size} misclassified scores for {indices.size} rows.",
            code="EVALUATION_REPORT_INPUT",
        )
    return scores


def _image_shape(context: ReportContext) -> tuple[int, int] | None:
    if context.image_shape is not None:
        return context.image_shape

    feature_dim = int(np.asarray(context.misclassified_images).shape[-1])
    side = math.isqrt(feature_dim)
    return (side, side) if side > 0 and side * side == feature_dim else None


def _class_names(context: ReportContext) -> list[str]:
    return ["0 (other labels)", f"1 (label {context.positive_label})"]


def _error_count(context: ReportContext) -> int:
    return int(np.count_nonzero(np.asarray(context.labels) != np.asarray(context.predicted)))


def _read_trial(trial: Mapping[str, Any]) -> _Trial:
    """Read a SageMaker TrainingJobSummary or its flattened form (see ReportContext)."""
    if "TrainingJobName" in trial:
        final_metric = trial.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        objective = final_metric.get("Value")
        return _Trial(
            name=str(trial["TrainingJobName"]),
            status=str(trial.get("TrainingJobStatus") or ""),
            objective=None if objective is None else float(objective),
            hyperparameters=trial.get("TunedHyperParameters") or {},
            metric_name=final_metric.get("MetricName"),
        )

    objective = trial.get("objective_value")
    return _Trial(
        name=str(trial.get("training_job") or ""),
        status=str(trial.get("status") or ""),
        objective=None if objective is None else float(objective),
        hyperparameters=trial.get("hyperparameters") or {},
        metric_name=trial.get("objective_metric"),
    )


def _figure_or_reason(draw: Callable[[], bytes], alt: str, element_id: str) -> str:
    """Draw a curve, or explain why it does not exist (a test split with a single class)."""
    try:
        picture = _image_tag(draw(), alt)
    except EvaluationError as exc:
        return f"<figure id='{element_id}'><p>{_escape(exc.message)}</p></figure>"
    return f"<figure id='{element_id}'>{picture}</figure>"


def _image_tag(png: bytes, alt: str, css_class: str | None = None) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    class_attribute = f" class='{css_class}'" if css_class else ""
    return f"<img{class_attribute} alt='{_escape(alt)}' src='data:image/png;base64,{encoded}'>"


def _escape(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _format_metric(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.4f}"


def _format_time(value: datetime | str | None) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value


def _format_bytes(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{int(value) / 1_000_000:.1f} MB"


_STYLE = """
body { font-family: system-ui, sans-serif; color: #1f2328; margin: 24px 32px; max-width: 1200px; }
h1 { font-size: 1.5rem; margin-bottom: 4px; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 28px; }
h3 { font-size: 1rem; margin: 16px 0 6px; }
.subtitle { color: #57606a; margin-top: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 3px 10px; text-align: left; vertical-align: top; }
table.facts th { color: #57606a; font-weight: 600; }
table.facts td { overflow-wrap: anywhere; max-width: 640px; }
table.grid th, table.grid td { border: 1px solid #d0d7de; }
table.grid thead th { background: #f6f8fa; }
tr.best td { background: #dafbe1; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
figure { margin: 0; }
figcaption, .note { color: #57606a; font-size: 0.85rem; max-width: 460px; }
ul.gallery { list-style: none; padding: 0; display: grid; gap: 10px;
  grid-template-columns: repeat(auto-fill, minmax(120px, 1fr)); }
ul.gallery figcaption { font-size: 0.75rem; max-width: 120px; }
img.digit { width: 84px; height: 84px; image-rendering: pixelated; border: 1px solid #d0d7de; }
"""

_PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
<p class="subtitle">Binary classifier: is the label {positive}? Source file: {source}</p>
{body}
</body>
</html>
"""
