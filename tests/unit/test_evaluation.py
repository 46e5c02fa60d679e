"""Result documents of an evaluated run: the inferred threshold and the endpoint's lifetime."""

from datetime import UTC, datetime

import numpy as np

from learner_pipeline.evaluation import endpoint_seconds, inferred_threshold, missing_class_notes


def test_threshold_bounds_from_answers():
    scores = np.array([0.1, 0.45, 0.52, 0.9])
    predicted = np.array([0, 0, 1, 1])

    bounds = inferred_threshold(scores, predicted)

    assert bounds == {"above": 0.45, "at_most": 0.52}


def test_threshold_one_class_only():
    bounds = inferred_threshold(np.array([0.2, 0.3]), np.array([0, 0]))
    assert bounds == {"above": 0.3, "at_most": None}


def test_endpoint_seconds_from_deploy_time():
    run = {"deploying_at": "2026-12-04T10:00:00.000+00:00"}
    now = datetime(2026, 12, 4, 10, 7, 30, tzinfo=UTC)
    assert endpoint_seconds(run, now) == 450.0


def test_endpoint_seconds_unknown():
    assert endpoint_seconds({}) is None


def test_notes_both_classes_empty():
    assert missing_class_notes(np.array([0, 1, 0]), positive_label=0) == []


def test_notes_no_negatives():
    # Given a test split where every row has the positive label
    notes = missing_class_notes(np.array([1, 1, 1]), positive_label=3)

    # Then one note states that the negatives are missing and roc_auc is undefined
    assert len(notes) == 1
    assert "no negative rows (labels other than 3)" in notes[0]
    assert "roc_auc is undefined" in notes[0]


def test_notes_no_positives():
    notes = missing_class_notes(np.array([0, 0]), positive_label=3)

    assert len(notes) == 1
    assert "no positive rows (label 3)" in notes[0]
    assert "roc_auc and pr_auc are undefined" in notes[0]
