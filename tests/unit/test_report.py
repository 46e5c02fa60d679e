import base64
import io
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from learner_pipeline.errors import EvaluationError
from learner_pipeline.metrics import binary_metrics, confusion_matrix
from learner_pipeline.report import ReportContext, render_report, select_misclassified

MALICIOUS = "<script>alert('x')</script>"
SECTION_IDS = [
    "run",
    "metrics",
    "confusion-matrix",
    "curves",
    "roc-curve",
    "pr-curve",
    "score-histogram",
    "tuning",
    "misclassified",
]
# The darkest colour of matplotlib's "Blues" colour map, which fills the heatmap's largest cell.
HEATMAP_DARKEST = np.array([8, 48, 107]) / 255


def trial_summary(name: str, objective: float | None, l1: str) -> dict:
    """Return a TrainingJobSummary shaped as ListTrainingJobsForHyperParameterTuningJob returns it."""
    summary = {
        "TrainingJobName": name,
        "TrainingJobStatus": "Completed" if objective is not None else "Failed",
        "TunedHyperParameters": {"l1": l1, "learning_rate": "0.05"},
    }
    if objective is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "MetricName": "validation:binary_f_beta",
            "Value": objective,
        }
    return summary


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return real handwritten digits drawn as 28 x 28 images, an "is it an 8?" model's scores,
    and the binary labels.

    scikit-learn ships 1,797 digits of 8 x 8 pixels. Each is scaled 3 times and padded to
    28 x 28, the MNIST size, and a logistic regression trained on the first 1,000 scores the rest.
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((3, 3)))
    images = np.pad(images, ((0, 0), (2, 2), (2, 2))).reshape(len(images), 784)
    labels = (digits.target == 8).astype(np.int64)

    model = LogisticRegression(max_iter=1_000).fit(images[:1_000], labels[:1_000])
    scores = model.predict_proba(images[1_000:])[:, 1]
    return images[1_000:].astype(np.float32), scores, labels[1_000:]


def build_context(
    features: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    source: str = "s3://ingest/mnist.pkl.gz",
    gallery: bool = True,
    **overrides,
) -> ReportContext:
    predicted = (scores > 0.5).astype(np.int64)
    indices = select_misclassified(labels, predicted, scores) if gallery else np.zeros(0, np.int64)
    values = {
        "run_id": "3f9c2a7b1d4e8f60",
        "source": source,
        "positive_label": 8,
        "metrics": binary_metrics(labels, predicted, scores),
        "labels": labels,
        "predicted": predicted,
        "scores": scores,
        "hyperparameters": {"l1": "0.001", "learning_rate": "0.05", "predictor_type": "binary_classifier"},
        "trials": [
            trial_summary("ll-3f9c2a7b-001", 0.81, "0.001"),
            trial_summary("ll-3f9c2a7b-002", 0.93, "0.0001"),
            trial_summary("ll-3f9c2a7b-003", None, "0.1"),
        ],
        "misclassified_indices": indices,
        "misclassified_images": features[indices],
        "created_at": "2025-01-01T10:00:00+00:00",
        "finished_at": "2025-01-01T10:42:00+00:00",
        "best_training_job": "ll-3f9c2a7b-002",
        "endpoint_name": "ll-3f9c2a7b",
        "endpoint_usage": {"rows": labels.size, "calls": 1, "bytes_sent": 2_500_000, "retries": 0, "seconds": 0.8},
    }
    values.update(overrides)
    return ReportContext(**values)


@pytest.fixture(scope="module")
def split():
    return digits_split()


@pytest.fixture(scope="module")
def page(split):
    return render_report(build_context(*split))


class ElementCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> ElementCollector:
    collector = ElementCollector()
    collector.feed(page)
    return collector


def png_images(page: str) -> list[np.ndarray]:
    from matplotlib import image as matplotlib_image

    prefix = "data:image/png;base64,"
    sources = [attrs["src"] for tag, attrs in parse(page).elements if tag == "img"]
    return [
        matplotlib_image.imread(io.BytesIO(base64.b64decode(source[len(prefix) :])), format="png")
        for source in sources
    ]


# --- content --------------------------------------------------------------------------------


def test_report_has_sections(page):
    ids = {attrs.get("id") for _, attrs in parse(page).elements}

    for section_id in SECTION_IDS:
        assert section_id in ids, section_id


def test_report_lists_trials(page):
    for name in ("ll-3f9c2a7b-001", "ll-3f9c2a7b-002", "ll-3f9c2a7b-003"):
        assert name in page
    assert "0.9300" in page
    assert "0.8100" in page
    assert "validation:binary_f_beta" in page


def test_report_trials_best_first(page):
    assert page.index("ll-3f9c2a7b-002") < page.index("ll-3f9c2a7b-001")
    assert page.index("ll-3f9c2a7b-001") < page.index("ll-3f9c2a7b-003")


def test_report_marks_best_trial(page):
    best_rows = [attrs for tag, attrs in parse(page).elements if tag == "tr" and attrs.get("class") == "best"]

    assert len(best_rows) == 1


def test_report_shows_metrics(split, page):
    _, scores, labels = split
    metrics = binary_metrics(labels, (scores > 0.5).astype(np.int64), scores)

    assert f"{metrics['accuracy']:.4f}" in page
    assert f"{metrics['f1']:.4f}" in page
    assert f"{metrics['roc_auc']:.4f}" in page


def test_report_images_are_inline_png(split, page):
    _, scores, labels = split
    errors = int(np.count_nonzero((scores > 0.5) != labels))

    images = png_images(page)

    # Heatmap, ROC, PR and histogram, then one picture per misclassified row.
    assert len(images) == 4 + min(errors, 48)
    assert images[-1].shape[:2] == (28, 28)


def test_report_has_no_external_reference(page):
    elements = parse(page).elements

    for tag, attrs in elements:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        assert "href" not in attrs, (tag, attrs)
        source = attrs.get("src")
        assert source is None or source.startswith("data:image/png;base64,"), source
    assert "url(" not in page
    assert "@import" not in page


def test_report_sets_content_security_policy(page):
    policies = [
        attrs.get("content")
        for tag, attrs in parse(page).elements
        if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]

    assert policies == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]


def test_report_escapes_malicious_source(split):
    # Given a user-controlled file name, trial name and hyperparameter value with markup
    context = build_context(
        *split,
        source=f"s3://ingest/{MALICIOUS}.pkl.gz",
        trials=[trial_summary(f"job{MALICIOUS}", 0.5, MALICIOUS)],
        hyperparameters={MALICIOUS: MALICIOUS},
    )

    # When
    page = render_report(context)

    # Then no element is injected and the text still reads as typed
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert all(tag != "script" for tag, _ in parse(page).elements)
    assert f"s3://ingest/{MALICIOUS}.pkl.gz" in "".join(parse(page).text)


def test_report_escapes_quotes_in_attributes(split):
    # Given a positive label whose text would close an alt attribute
    context = build_context(*split, positive_label="8' onerror='alert(1)")

    # When
    page = render_report(context)

    # Then no element gained an event handler attribute
    assert all("onerror" not in attrs for _, attrs in parse(page).elements)


def test_report_one_class_split(split):
    # Given a test split without any positive row, where curves do not exist
    features, scores, labels = split
    negatives = labels == 0
    context = build_context(features[negatives], scores[negatives], labels[negatives])

    # When
    page = render_report(context)

    # Then the page explains why instead of failing
    assert "needs both classes" in page
    assert "needs at least one positive row" in page
    assert "n/a" in page


def test_report_lists_non_square_rows():
    # Given 10 features, which are no square image
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 0, 1, 1, 0])
    scores = np.array([0.7, 0.2, 0.1, 0.9, 0.8, 0.3])
    features = rng.random((6, 10))

    # When
    page = render_report(build_context(features, scores, labels))

    # Then the two errors are listed without pictures
    assert "not a square image" in page
    assert "row 0: actual 0, predicted 1, score 0.700" in page
    assert "row 1: actual 1, predicted 0, score 0.200" in page
    assert len(png_images(page)) == 4


def test_report_uses_given_confusion_matrix(split):
    features, scores, labels = split
    matrix = confusion_matrix(labels, (scores > 0.5).astype(np.int64))

    page = render_report(build_context(features, scores, labels, confusion_matrix=matrix))

    assert "confusion-matrix" in page


def test_report_rejects_image_count_mismatch(split):
    features, scores, labels = split
    context = build_context(features, scores, labels)
    broken = build_context(
        features,
        scores,
        labels,
        misclassified_images=np.asarray(context.misclassified_images)[:-1],
    )

    with pytest.raises(EvaluationError) as caught:
        render_report(broken)

    assert caught.value.code == "EVALUATION_REPORT_INPUT"


def test_report_rejects_wrong_image_shape(split):
    with pytest.raises(EvaluationError) as caught:
        render_report(build_context(*split, image_shape=(20, 20)))

    assert caught.value.code == "EVALUATION_REPORT_INPUT"


def test_select_misclassified_confident_first():
    actual = np.array([0, 0, 1, 1, 0, 1])
    predicted = np.array([1, 1, 0, 0, 0, 1])
    scores = np.array([0.55, 0.99, 0.35, 0.02, 0.1, 0.9])

    indices = select_misclassified(actual, predicted, scores)

    assert indices.tolist() == [1, 3, 2, 0]


def test_select_misclassified_limit():
    actual = np.zeros(100, dtype=np.int64)
    predicted = np.ones(100, dtype=np.int64)
    scores = np.linspace(0.51, 0.99, 100)

    indices = select_misclassified(actual, predicted, scores, limit=5)

    assert indices.tolist() == [99, 98, 97, 96, 95]


def test_report_import_skips_matplotlib():
    # The module is imported by code paths that never draw, so it must not load matplotlib.
    code = "import sys, learner_pipeline.report; print('matplotlib' in sys.modules)"
    shared = Path(__file__).resolve().parents[2] / "layers" / "shared"

    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(shared)},
    )

    assert output.stdout.strip() == "False"


# --- rendering in a browser -----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: str, directory: Path, name: str) -> np.ndarray:
    """Render the page in headless Chromium at 1280 x 4000 and return the RGB pixels."""
    from matplotlib import image as matplotlib_image

    html_path = directory / f"{name}.html"
    png_path = directory / f"{name}.png"
    html_path.write_text(page, encoding="utf-8")

    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={directory / 'chromium-profile'}",
            f"--screenshot={png_path}",
            "--window-size=1280,4000",
            html_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return matplotlib_image.imread(png_path)[:, :, :3]


def heatmap_mask(pixels: np.ndarray) -> np.ndarray:
    return np.all(np.abs(pixels - HEATMAP_DARKEST) < 0.02, axis=2)


def black_mask(pixels: np.ndarray) -> np.ndarray:
    """Mark pure black pixels: gallery digit strokes and chart axes, but not the page text (#1f2328)."""
    return np.all(pixels < 0.03, axis=2)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_chromium(split, tmp_path):
    # Given the report of real digits, and the same report without the gallery
    full_page = render_report(build_context(*split))
    bare_page = render_report(build_context(*split, gallery=False))

    # When both are rendered by a browser
    full = screenshot(full_page, tmp_path, "full")
    bare = screenshot(bare_page, tmp_path, "bare")

    # Then the heatmap draws its darkest cell as a solid block (about 100 x 100 pixels)
    heatmap_rows = np.flatnonzero(heatmap_mask(full).any(axis=1))
    assert heatmap_mask(full).sum() > 3_000
    assert heatmap_rows.size > 50

    # And the gallery, the last section, adds digit strokes below everything the bare page draws
    gallery_top = np.flatnonzero(black_mask(bare).any(axis=1)).max() + 1
    gallery_rows = gallery_top + np.flatnonzero(black_mask(full)[gallery_top:].any(axis=1))
    assert black_mask(full).sum() - black_mask(bare).sum() > 5_000
    assert black_mask(full)[gallery_top:].sum() > 5_000
    assert gallery_top > heatmap_rows.max()

    # And the page is not cut off: the last gallery row sits above the window's bottom edge
    assert gallery_rows.max() < full.shape[0] - 100
