import numpy as np
import pytest
from sklearn import metrics as skm

from learner_pipeline.errors import EvaluationError
from learner_pipeline.metrics import (
    binary_metrics,
    confusion_matrix,
    confusion_matrix_csv,
    pr_curve,
    roc_curve,
)

# Hand-computed case: 4 true positives, 1 false positive, 3 true negatives, 2 false negatives.
ACTUAL = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 1])
PREDICTED = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.65, 0.3, 0.2, 0.1, 0.4, 0.35])


def random_case(seed: int, rows: int = 500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    actual = rng.integers(0, 2, rows)
    # Scores correlated with the labels and rounded so that ties occur.
    scores = np.clip(actual * 0.3 + rng.normal(0.35, 0.25, rows), 0, 1).round(2)
    predicted = (scores > 0.5).astype(np.int64)
    return actual, predicted, scores


def test_confusion_matrix_hand_case():
    cm = confusion_matrix(ACTUAL, PREDICTED)

    assert cm["labels"] == [0, 1]
    assert cm["matrix"] == [[3, 1], [2, 4]]


def test_confusion_matrix_keeps_absent_labels():
    # Given a split where nothing is positive, actually or predicted
    actual = np.zeros(5, dtype=np.int64)

    # When
    cm = confusion_matrix(actual, actual)

    # Then both labels still have a row and a column
    assert cm["matrix"] == [[5, 0], [0, 0]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_matches_sklearn(seed):
    actual, predicted, _ = random_case(seed)

    cm = confusion_matrix(actual, predicted)

    expected = skm.confusion_matrix(actual, predicted, labels=[0, 1]).tolist()
    assert cm["matrix"] == expected


def test_confusion_matrix_csv_layout():
    cm = confusion_matrix(ACTUAL, PREDICTED)

    text = confusion_matrix_csv(cm)

    assert text == "actual\\predicted,0,1\n0,3,1\n1,2,4\n"


def test_binary_metrics_hand_case():
    result = binary_metrics(ACTUAL, PREDICTED, SCORES)

    assert result["count"] == 10
    assert result["true_positives"] == 4
    assert result["false_positives"] == 1
    assert result["true_negatives"] == 3
    assert result["false_negatives"] == 2
    assert result["accuracy"] == pytest.approx(0.7)
    assert result["precision"] == pytest.approx(0.8)
    assert result["recall"] == pytest.approx(4 / 6)
    assert result["f1"] == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))


def test_binary_metrics_hand_auc():
    # Of the 6 x 4 (positive, negative) pairs, only (0.6, 0.65), (0.4, 0.65) and (0.35, 0.65)
    # are ranked wrongly, so AUC = 21 / 24.
    result = binary_metrics(ACTUAL, PREDICTED, SCORES)

    assert result["roc_auc"] == pytest.approx(21 / 24)


def test_binary_metrics_hand_average_precision():
    # Ranked by score: 1 1 1 0 1 1 1 0 0 0; precision at each positive: 1, 1, 1, 4/5, 5/6, 6/7.
    expected = (1 + 1 + 1 + 4 / 5 + 5 / 6 + 6 / 7) / 6

    result = binary_metrics(ACTUAL, PREDICTED, SCORES)

    assert result["pr_auc"] == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_binary_metrics_match_sklearn(seed):
    actual, predicted, scores = random_case(seed)

    result = binary_metrics(actual, predicted, scores)

    assert result["accuracy"] == pytest.approx(skm.accuracy_score(actual, predicted))
    assert result["precision"] == pytest.approx(skm.precision_score(actual, predicted))
    assert result["recall"] == pytest.approx(skm.recall_score(actual, predicted))
    assert result["f1"] == pytest.approx(skm.f1_score(actual, predicted))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(actual, scores))
    assert result["pr_auc"] == pytest.approx(skm.average_precision_score(actual, scores))


def test_binary_metrics_nothing_predicted_positive():
    # Given a model that predicts no positive row
    actual = np.array([1, 0, 1, 0])
    predicted = np.zeros(4, dtype=np.int64)
    scores = np.array([0.4, 0.1, 0.3, 0.2])

    # When
    result = binary_metrics(actual, predicted, scores)

    # Then the 0/0 ratios are 0.0 as documented, and scikit-learn agrees with zero_division=0
    assert result["precision"] == 0.0
    assert skm.precision_score(actual, predicted, zero_division=0) == 0.0
    assert result["recall"] == 0.0
    assert result["f1"] == 0.0


def test_binary_metrics_one_class_areas():
    # Given a split without positive rows
    actual = np.zeros(4, dtype=np.int64)
    predicted = np.array([0, 1, 0, 0])
    scores = np.array([0.1, 0.7, 0.2, 0.3])

    # When
    result = binary_metrics(actual, predicted, scores)

    # Then the areas do not exist and recall is defined as 0.0
    assert result["roc_auc"] is None
    assert result["pr_auc"] is None
    assert result["recall"] == 0.0
    assert result["accuracy"] == pytest.approx(0.75)


def test_binary_metrics_rejects_other_labels():
    with pytest.raises(EvaluationError) as caught:
        binary_metrics(np.array([0, 7]), np.array([0, 1]), np.array([0.1, 0.9]))

    assert caught.value.code == "EVALUATION_BAD_LABELS"
    assert "[7]" in caught.value.message


def test_binary_metrics_rejects_length_mismatch():
    with pytest.raises(EvaluationError) as caught:
        binary_metrics(np.array([0, 1, 1]), np.array([0, 1]), np.array([0.1, 0.9]))

    assert caught.value.code == "EVALUATION_LENGTH_MISMATCH"


def test_binary_metrics_rejects_nan_scores():
    with pytest.raises(EvaluationError) as caught:
        binary_metrics(np.array([0, 1]), np.array([0, 1]), np.array([0.1, np.nan]))

    assert caught.value.code == "EVALUATION_BAD_SCORES"


def test_binary_metrics_rejects_empty():
    empty = np.array([], dtype=np.int64)

    with pytest.raises(EvaluationError) as caught:
        binary_metrics(empty, empty, np.array([]))

    assert caught.value.code == "EVALUATION_EMPTY"


def test_roc_curve_matches_sklearn():
    actual, _, scores = random_case(5, rows=150)

    curve = roc_curve(actual, scores, max_points=10_000)

    fpr, tpr, thresholds = skm.roc_curve(actual, scores, drop_intermediate=False)
    np.testing.assert_allclose(curve["fpr"], fpr)
    np.testing.assert_allclose(curve["tpr"], tpr)
    assert curve["thresholds"][0] is None
    np.testing.assert_allclose(curve["thresholds"][1:], thresholds[1:])


def test_pr_curve_matches_sklearn():
    actual, _, scores = random_case(6, rows=150)

    curve = pr_curve(actual, scores, max_points=10_000)

    precision, recall, _ = skm.precision_recall_curve(actual, scores)
    # scikit-learn stops at full recall and orders by decreasing recall.
    points = len(precision)
    np.testing.assert_allclose(curve["recall"][:points], recall[::-1])
    np.testing.assert_allclose(curve["precision"][:points], precision[::-1])


def test_roc_curve_downsampled_keeps_ends():
    # Given 5,000 distinct scores, so the full curve has 5,001 points
    rng = np.random.default_rng(7)
    actual = rng.integers(0, 2, 5_000)
    scores = rng.random(5_000)

    # When
    curve = roc_curve(actual, scores)

    # Then
    assert len(curve["fpr"]) <= 200
    assert curve["fpr"][0] == 0.0
    assert curve["tpr"][0] == 0.0
    assert curve["fpr"][-1] == 1.0
    assert curve["tpr"][-1] == 1.0
    assert np.all(np.diff(curve["fpr"]) >= 0)


def test_pr_curve_downsampled_keeps_ends():
    rng = np.random.default_rng(8)
    actual = rng.integers(0, 2, 5_000)
    scores = rng.random(5_000)

    curve = pr_curve(actual, scores)

    assert len(curve["recall"]) <= 200
    assert curve["recall"][0] == 0.0
    assert curve["precision"][0] == 1.0
    assert curve["recall"][-1] == 1.0
    assert np.all(np.diff(curve["recall"]) >= 0)


def test_roc_curve_rejects_one_class():
    with pytest.raises(EvaluationError) as caught:
        roc_curve(np.ones(3, dtype=np.int64), np.array([0.2, 0.5, 0.9]))

    assert caught.value.code == "EVALUATION_ONE_CLASS"


def test_pr_curve_rejects_no_positive():
    with pytest.raises(EvaluationError) as caught:
        pr_curve(np.zeros(3, dtype=np.int64), np.array([0.2, 0.5, 0.9]))

    assert caught.value.code == "EVALUATION_ONE_CLASS"
