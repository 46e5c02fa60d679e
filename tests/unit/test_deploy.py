"""Choosing the best training job and the hosting requests."""

import pytest

from learner_pipeline.deploy import best_training_job, tuning_failure
from learner_pipeline.errors import TuningFailedError


def test_best_job_read():
    best = best_training_job({"HyperParameterTuningJobName": "llp-x", "BestTrainingJob": {
        "TrainingJobName": "llp-x-003-1a2b3c4d", "TunedHyperParameters": {"wd": "0.001"},
        "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:binary_f_beta", "Value": 0.97}}})
    assert best.name == "llp-x-003-1a2b3c4d"
    assert best.objective_value == pytest.approx(0.97)
    assert best.tuned_hyperparameters == {"wd": "0.001"}


def test_missing_best_job_fails():
    with pytest.raises(TuningFailedError) as caught:
        best_training_job({"HyperParameterTuningJobName": "llp-x"})
    assert caught.value.code == "TUNING_NO_BEST_JOB"


def test_failure_message_has_reason():
    error = tuning_failure("llp-x", "Failed", "All training jobs failed")
    assert error.code == "TUNING_FAILED"
    assert "All training jobs failed" in error.message
    assert tuning_failure("llp-x", "Stopped", None).code == "TUNING_STOPPED"
