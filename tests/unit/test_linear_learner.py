"""Unit tests of the sandbox's Linear Learner stand-in."""

from __future__ import annotations

import io
import json
import math
import tarfile

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    fbeta_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from sandbox.linear_learner import (
    AUTO_LR_SCHEDULER_FACTOR,
    AUTO_NUM_MODELS,
    MAX_NUM_MODELS,
    MODEL_FORMAT,
    LinearModel,
    _calibrate_threshold,
    _choose_model,
    _fit_scaler,
    _learning_rate_schedule,
    _LearningRateSchedule,
    _model_variants,
    _roc_auc,
    _bias_lr_mult,
    _Split,
    parse_hyperparameters,
    train,
)

DIM = 20
NOISE_FEATURES = slice(DIM // 4, 3 * DIM // 4)
REQUIRED = {"feature_dim": str(DIM), "predictor_type": "binary_classifier"}
VALIDATION_METRICS = {
    "validation:binary_f_beta",
    "validation:binary_classification_accuracy",
    "validation:precision",
    "validation:recall",
    "validation:objective_loss",
    "validation:roc_auc_score",
}


def make_blobs(rows: int, seed: int, positive_share: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Make two overlapping Gaussian classes. The middle half of the features is noise."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(rows) < positive_share).astype(np.float32)
    centre = np.linspace(-1.0, 1.0, DIM)
    centre[NOISE_FEATURES] = 0.0
    features = rng.normal(0.5, 0.3, size=(rows, DIM)) + 0.5 * np.outer(labels, centre)
    return features.astype(np.float32), labels


@pytest.fixture(scope="module")
def blobs():
    train_x, train_y = make_blobs(2000, seed=1)
    validation_x, validation_y = make_blobs(800, seed=2)
    return train_x, train_y, validation_x, validation_y


# --- parse_hyperparameters ---------------------------------------------------------------------


def test_parse_defaults():
    hp = parse_hyperparameters(REQUIRED)

    assert hp.feature_dim == DIM
    assert hp.epochs == 15
    assert hp.mini_batch_size == 1000
    assert hp.beta_1 == 0.9
    assert hp.beta_2 == 0.999
    assert hp.normalize_data is True
    assert hp.num_point_for_scaler == 10000
    assert hp.early_stopping_patience == 3
    assert hp.early_stopping_tolerance == 0.001
    assert hp.positive_example_weight_mult == 1.0
    assert hp.binary_classifier_model_selection_criteria == "accuracy"
    assert hp.f_beta == 1.0
    assert hp.target_recall == 0.8
    assert hp.target_precision == 0.8
    assert hp.num_calibration_samples is None


def test_parse_string_values():
    hp = parse_hyperparameters(
        REQUIRED
        | {
            "mini_batch_size": "200",
            "learning_rate": "0.05",
            "wd": "1e-4",
            "use_bias": "False",
            "normalize_data": "false",
            "binary_classifier_model_selection_criteria": "f_beta",
            "f_beta": "2",
        }
    )

    assert hp.mini_batch_size == 200
    assert hp.learning_rate == 0.05
    assert hp.wd == 1e-4
    assert hp.use_bias is False
    assert hp.normalize_data is False
    assert hp.binary_classifier_model_selection_criteria == "f_beta"
    assert hp.f_beta == 2.0


def test_parse_auto_values():
    auto = {name: "auto" for name in ("learning_rate", "wd", "l1", "beta_1", "beta_2")}

    hp = parse_hyperparameters(REQUIRED | auto)

    assert hp.learning_rate > 0
    assert hp.wd == 0.0
    assert hp.l1 == 0.0
    assert hp.beta_1 == 0.9
    assert hp.beta_2 == 0.999


def test_parse_bias_lr_mult_auto():
    hp = parse_hyperparameters(REQUIRED | {"bias_lr_mult": "auto"})

    assert hp.bias_lr_mult is None
    assert _bias_lr_mult(hp) == math.sqrt(DIM)


def test_parse_bias_lr_mult_value():
    hp = parse_hyperparameters(REQUIRED | {"bias_lr_mult": "2.5"})

    assert _bias_lr_mult(hp) == 2.5


def test_parse_unbias_data_follows_use_bias():
    assert parse_hyperparameters(REQUIRED | {"use_bias": "true"}).unbias_data is True
    assert parse_hyperparameters(REQUIRED | {"use_bias": "false"}).unbias_data is False


def test_parse_integers_from_tuner_floats():
    hp = parse_hyperparameters(REQUIRED | {"mini_batch_size": "500.0"})

    assert hp.mini_batch_size == 500


def test_parse_non_string_values():
    raw = {"feature_dim": DIM, "predictor_type": "binary_classifier", "epochs": 3}

    hp = parse_hyperparameters(raw)

    assert hp.feature_dim == DIM
    assert hp.epochs == 3


def test_parse_ignores_accepted_extras():
    hp = parse_hyperparameters(
        REQUIRED
        | {
            "loss": "logistic",
            "optimizer": "adam",
            "use_lr_scheduler": "true",
            "_tuning_objective_metric": "validation:binary_f_beta",
        }
    )

    assert hp.feature_dim == DIM


def test_parse_num_models():
    assert parse_hyperparameters(REQUIRED | {"num_models": "auto"}).num_models == AUTO_NUM_MODELS
    assert parse_hyperparameters(REQUIRED | {"num_models": "3"}).num_models == 3


def test_parse_positive_weight_balanced():
    hp = parse_hyperparameters(REQUIRED | {"positive_example_weight_mult": "balanced"})

    assert hp.positive_example_weight_mult == "balanced"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mini_batch_size", "abc"),
        ("mini_batch_size", "0"),
        ("mini_batch_size", "1.5"),
        ("epochs", "-1"),
        ("learning_rate", "0"),
        ("learning_rate", "nan"),
        ("wd", "-1e-3"),
        ("beta_1", "1.0"),
        ("use_bias", "yes"),
        ("target_recall", "1.5"),
        ("binary_classifier_model_selection_criteria", "f1"),
        ("positive_example_weight_mult", "0"),
        ("init_method", "xavier"),
        ("momentum", "2"),
        ("num_models", "0"),
    ],
)
def test_parse_invalid_value(name, value):
    with pytest.raises(ValueError, match=name):
        parse_hyperparameters(REQUIRED | {name: value})


def test_parse_missing_feature_dim():
    with pytest.raises(ValueError, match="feature_dim"):
        parse_hyperparameters({"predictor_type": "binary_classifier"})


def test_parse_unknown_name():
    with pytest.raises(ValueError, match="learnig_rate"):
        parse_hyperparameters(REQUIRED | {"learnig_rate": "0.1"})


@pytest.mark.parametrize("predictor_type", ["regressor", "multiclass_classifier"])
def test_parse_unsupported_predictor_type(predictor_type):
    with pytest.raises(ValueError, match="only binary_classifier"):
        parse_hyperparameters(REQUIRED | {"predictor_type": predictor_type})


def test_parse_invalid_predictor_type():
    with pytest.raises(ValueError, match="predictor_type"):
        parse_hyperparameters(REQUIRED | {"predictor_type": "classifier"})


@pytest.mark.parametrize(("name", "value"), [("optimizer", "sgd"), ("loss", "hinge_loss")])
def test_parse_unsupported_setting(name, value):
    with pytest.raises(ValueError, match="supports only"):
        parse_hyperparameters(REQUIRED | {name: value})


# --- train -------------------------------------------------------------------------------------


def test_train_learns_blobs(blobs):
    # Given two overlapping classes and scikit-learn's logistic regression as the reference
    train_x, train_y, validation_x, validation_y = blobs
    reference = LogisticRegression().fit(train_x, train_y).score(validation_x, validation_y)

    # When
    settings = REQUIRED | {"mini_batch_size": "100"}
    result = train(train_x, train_y, validation_x, validation_y, settings)

    # Then
    assert result.metrics["validation:binary_classification_accuracy"] >= reference - 0.01
    assert result.metrics["validation:roc_auc_score"] > 0.99


def test_train_loss_near_sklearn(blobs):
    # Given scikit-learn's logistic regression loss on the validation set as the reference
    train_x, train_y, validation_x, validation_y = blobs
    reference = LogisticRegression().fit(train_x, train_y).predict_proba(validation_x)[:, 1]
    reference_loss = log_loss(validation_y, reference)

    # When the job keeps the model with the lowest validation loss
    settings = REQUIRED | {
        "mini_batch_size": "100",
        "binary_classifier_model_selection_criteria": "loss_function",
    }
    result = train(train_x, train_y, validation_x, validation_y, settings)

    # Then
    assert result.metrics["validation:objective_loss"] < 1.1 * reference_loss


def test_train_metric_names(blobs):
    result = train(*blobs, REQUIRED)

    assert set(result.metrics) == VALIDATION_METRICS | {"train:objective_loss"}


def test_train_metrics_match_sklearn(blobs):
    # Given a trained model and its predictions on the validation set
    train_x, train_y, validation_x, validation_y = blobs
    result = train(*blobs, REQUIRED | {"f_beta": "2"})
    scores, predicted = result.model.predict(validation_x)
    metrics = result.metrics

    # Then each reported metric equals scikit-learn's on the same predictions
    assert metrics["validation:binary_classification_accuracy"] == pytest.approx(
        accuracy_score(validation_y, predicted)
    )
    assert metrics["validation:precision"] == pytest.approx(
        precision_score(validation_y, predicted)
    )
    assert metrics["validation:recall"] == pytest.approx(recall_score(validation_y, predicted))
    assert metrics["validation:binary_f_beta"] == pytest.approx(
        fbeta_score(validation_y, predicted, beta=2.0)
    )
    assert metrics["validation:roc_auc_score"] == pytest.approx(
        roc_auc_score(validation_y, scores), abs=1e-4
    )
    assert metrics["validation:objective_loss"] == pytest.approx(
        log_loss(validation_y, scores.astype(np.float64)), rel=1e-3
    )


def test_train_same_seed_same_model(blobs):
    first = train(*blobs, REQUIRED, seed=7)
    second = train(*blobs, REQUIRED, seed=7)

    np.testing.assert_array_equal(first.model.weights, second.model.weights)
    assert first.metrics == second.metrics


def test_train_other_seed_other_model(blobs):
    first = train(*blobs, REQUIRED, seed=7)
    second = train(*blobs, REQUIRED, seed=8)

    assert not np.array_equal(first.model.weights, second.model.weights)


def test_train_runs_all_epochs():
    # Given a tolerance no epoch can miss, so the loss keeps improving
    train_x, train_y = make_blobs(500, seed=3)
    validation_x, validation_y = make_blobs(200, seed=4)
    settings = REQUIRED | {
        "epochs": "4",
        "early_stopping_tolerance": "1e-12",
        "learning_rate": "0.001",
    }

    result = train(train_x, train_y, validation_x, validation_y, settings)

    assert result.epochs_run == 4
    assert result.stopped_early is False


def test_train_stops_early():
    # Given a tolerance no epoch can meet: every epoch after the first counts as no improvement
    train_x, train_y = make_blobs(500, seed=3)
    validation_x, validation_y = make_blobs(200, seed=4)
    settings = REQUIRED | {
        "epochs": "20",
        "early_stopping_patience": "2",
        "early_stopping_tolerance": "0.99",
    }

    result = train(train_x, train_y, validation_x, validation_y, settings)

    assert result.epochs_run == 3
    assert result.stopped_early is True


def test_train_without_validation():
    train_x, train_y = make_blobs(500, seed=3)

    result = train(train_x, train_y, None, None, REQUIRED)

    assert set(result.metrics) == {"train:objective_loss"}
    assert result.model.feature_dim == DIM


def test_train_l1_zeroes_noise_weights(blobs):
    dense = train(*blobs, REQUIRED)
    sparse = train(*blobs, REQUIRED | {"l1": "0.5", "learning_rate": "0.05"})

    assert np.count_nonzero(dense.model.weights) == DIM
    assert np.count_nonzero(sparse.model.weights[NOISE_FEATURES]) < DIM // 2
    assert np.all(sparse.model.weights[: DIM // 4] != 0.0)


def test_train_wd_shrinks_weights(blobs):
    free = train(*blobs, REQUIRED | {"wd": "0"})
    decayed = train(*blobs, REQUIRED | {"wd": "1"})

    assert np.linalg.norm(decayed.model.weights) < np.linalg.norm(free.model.weights)


def test_train_positive_weight_moves_predictions(blobs):
    # Given the threshold fixed at 0.5, so only the loss weighting moves the predictions
    settings = REQUIRED | {
        "binary_classifier_model_selection_criteria": "loss_function",
        "mini_batch_size": "100",
    }
    validation_x = blobs[2]

    light = train(*blobs, settings | {"positive_example_weight_mult": "0.05"})
    plain = train(*blobs, settings)
    heavy = train(*blobs, settings | {"positive_example_weight_mult": "20"})

    # Then heavier positives mean more rows predicted positive
    counts = [result.model.predict(validation_x)[1].sum() for result in (light, plain, heavy)]
    assert counts[0] < counts[1]
    assert counts[1] < counts[2]


def test_train_without_bias_or_centering(blobs):
    settings = REQUIRED | {"use_bias": "false", "normalize_data": "false"}

    result = train(*blobs, settings)

    assert result.model.bias == 0.0


def test_train_loss_function_threshold(blobs):
    settings = REQUIRED | {"binary_classifier_model_selection_criteria": "loss_function"}

    result = train(*blobs, settings)

    assert result.model.decision_threshold == 0.5


def test_train_target_recall_met(blobs):
    settings = REQUIRED | {
        "binary_classifier_model_selection_criteria": "precision_at_target_recall",
        "target_recall": "0.97",
    }

    result = train(*blobs, settings)

    assert result.metrics["validation:recall"] >= 0.97


def test_train_feature_dim_mismatch(blobs):
    train_x, train_y, validation_x, validation_y = blobs

    with pytest.raises(ValueError, match="feature_dim=21"):
        train(train_x, train_y, validation_x, validation_y, REQUIRED | {"feature_dim": "21"})


def test_train_labels_not_binary(blobs):
    train_x, train_y, validation_x, validation_y = blobs
    labels = train_y.copy()
    labels[0] = 3.0

    with pytest.raises(ValueError, match="labels"):
        train(train_x, labels, validation_x, validation_y, REQUIRED)


def test_train_features_with_nan(blobs):
    train_x, train_y, validation_x, validation_y = blobs
    features = train_x.copy()
    features[5, 2] = np.nan

    with pytest.raises(ValueError, match="NaN"):
        train(features, train_y, validation_x, validation_y, REQUIRED)


def test_train_validation_labels_missing(blobs):
    train_x, train_y, validation_x, _ = blobs

    with pytest.raises(ValueError, match="validation"):
        train(train_x, train_y, validation_x, None, REQUIRED)


# --- num_models and model selection ----------------------------------------------------------


def test_variants_start_with_given_values():
    hp = parse_hyperparameters(REQUIRED | {"learning_rate": "0.02", "wd": "0.001"})

    variants = _model_variants(hp)

    assert variants.count == AUTO_NUM_MODELS
    assert variants.learning_rates[0] == 0.02
    assert variants.wds[0] == 0.001


def test_variants_are_distinct_and_close():
    hp = parse_hyperparameters(REQUIRED | {"learning_rate": "0.02", "wd": "0.001"})

    variants = _model_variants(hp)

    pairs = set(zip(variants.learning_rates.tolist(), variants.wds.tolist(), strict=True))
    assert len(pairs) == AUTO_NUM_MODELS
    assert variants.learning_rates.max() == pytest.approx(0.02 * 27)
    assert variants.learning_rates.min() == pytest.approx(0.02 / 27)
    assert variants.wds.max() == pytest.approx(1.0)
    assert variants.wds.min() == pytest.approx(1e-6)


def test_variants_nearest_first():
    hp = parse_hyperparameters(
        REQUIRED | {"learning_rate": "0.02", "wd": "0.001", "num_models": "9"}
    )

    variants = _model_variants(hp)

    assert variants.learning_rates.max() == pytest.approx(0.06)
    assert variants.learning_rates.min() == pytest.approx(0.02 / 3)
    assert variants.wds.max() == pytest.approx(0.01)
    assert variants.wds.min() == pytest.approx(0.0001)


def test_variants_count_capped():
    hp = parse_hyperparameters(REQUIRED | {"num_models": "1000"})

    assert _model_variants(hp).count == MAX_NUM_MODELS


def choice_split(labels: list[float]) -> _Split:
    values = np.array(labels)
    return _Split(np.zeros((values.size, 1), dtype=np.float32), values, np.ones(values.size))


def test_choose_model_best_accuracy():
    # Given model 0 misorders one pair of rows and model 1 separates the classes
    monitored = choice_split([1.0, 1.0, 0.0, 0.0])
    logits = np.array([[2.0, 3.0], [-1.0, 2.0], [1.0, -2.0], [-2.0, -3.0]])
    hp = parse_hyperparameters(REQUIRED)

    chosen, threshold = _choose_model(logits, monitored, slice(None), hp)

    assert chosen == 1
    assert threshold == 0.0


def test_choose_model_tie_lower_loss():
    # Given both models separate the rows, so they tie on accuracy, but model 1 has the lower loss
    monitored = choice_split([1.0, 0.0])
    logits = np.array([[1.0, 5.0], [-1.0, -5.0]])
    hp = parse_hyperparameters(REQUIRED)

    chosen, _ = _choose_model(logits, monitored, slice(None), hp)

    assert chosen == 1


def test_choose_model_full_tie_keeps_first():
    monitored = choice_split([1.0, 0.0])
    logits = np.array([[2.0, 2.0, 1.0], [-2.0, -2.0, -1.0]])
    hp = parse_hyperparameters(REQUIRED)

    chosen, _ = _choose_model(logits, monitored, slice(None), hp)

    assert chosen == 0


def test_choose_model_lowest_loss():
    # Given both models separate the rows, but model 1 is more confident
    monitored = choice_split([1.0, 0.0])
    logits = np.array([[1.0, 5.0], [-1.0, -5.0]])
    settings = REQUIRED | {"binary_classifier_model_selection_criteria": "loss_function"}

    chosen, threshold = _choose_model(logits, monitored, slice(None), parse_hyperparameters(settings))

    assert chosen == 1
    assert threshold == 0.0


def test_choose_model_meets_target_recall():
    # Given recall 1 costs model 0 a precision of 0.6 and model 1 none
    monitored = choice_split([1.0, 1.0, 0.0, 1.0, 0.0])
    logits = np.array(
        [[3.0, 3.0], [2.0, 2.0], [1.0, 0.5], [-3.0, 1.0], [-2.0, -1.0]]
    )
    settings = REQUIRED | {
        "binary_classifier_model_selection_criteria": "precision_at_target_recall",
        "target_recall": "1.0",
    }

    chosen, _ = _choose_model(logits, monitored, slice(None), parse_hyperparameters(settings))

    assert chosen == 1


def test_train_num_models_rescues_bad_wd(blobs):
    # Given a wd so large that the weights of the given setting collapse towards zero
    settings = REQUIRED | {
        "wd": "100",
        "binary_classifier_model_selection_criteria": "loss_function",
    }

    # When one model trains, against the capped count whose variants reach wd / 1000
    single = train(*blobs, settings | {"num_models": "1"})
    several = train(*blobs, settings | {"num_models": str(MAX_NUM_MODELS)})

    # Then the chosen variant fits the validation set better
    single_loss = single.metrics["validation:objective_loss"]
    assert several.metrics["validation:objective_loss"] < 0.5 * single_loss


# --- learning rate scheduler -------------------------------------------------------------------


def test_parse_scheduler_defaults():
    hp = parse_hyperparameters(REQUIRED)

    assert hp.use_lr_scheduler is True
    assert hp.lr_scheduler_step is None
    assert hp.lr_scheduler_factor is None
    assert hp.lr_scheduler_minimum_lr is None


def test_parse_scheduler_values():
    settings = REQUIRED | {
        "use_lr_scheduler": "false",
        "lr_scheduler_step": "20",
        "lr_scheduler_factor": "0.5",
        "lr_scheduler_minimum_lr": "1e-4",
    }

    hp = parse_hyperparameters(settings)

    assert hp.use_lr_scheduler is False
    assert hp.lr_scheduler_step == 20
    assert hp.lr_scheduler_factor == 0.5
    assert hp.lr_scheduler_minimum_lr == 1e-4


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("use_lr_scheduler", "1"),
        ("lr_scheduler_step", "0"),
        ("lr_scheduler_factor", "1"),
        ("lr_scheduler_factor", "0"),
        ("lr_scheduler_minimum_lr", "0"),
    ],
)
def test_parse_scheduler_invalid(name, value):
    with pytest.raises(ValueError, match=name):
        parse_hyperparameters(REQUIRED | {name: value})


def test_schedule_steps_down():
    # Given a halving every 2 updates from rates 0.4 and 0.1, floored at 0.06
    schedule = _LearningRateSchedule(step=2, factor=0.5, minimum=0.06)
    base = np.array([0.4, 0.1])

    rates = [schedule.rates(base, update).tolist() for update in range(1, 8)]

    # Then updates 1-2 use the base, 3-4 half of it, 5-6 a quarter, never below the floor
    assert rates[0] == [0.4, 0.1]
    assert rates[1] == [0.4, 0.1]
    assert rates[2] == pytest.approx([0.2, 0.06])
    assert rates[3] == pytest.approx([0.2, 0.06])
    assert rates[4] == pytest.approx([0.1, 0.06])
    assert rates[6] == pytest.approx([0.06, 0.06])


def test_schedule_keeps_rate_below_floor():
    schedule = _LearningRateSchedule(step=1, factor=0.5, minimum=0.01)

    rates = schedule.rates(np.array([0.001]), update_number=10)

    assert rates.tolist() == [0.001]


def test_schedule_auto_once_per_epoch():
    # Given 2,500 rows in mini-batches of 1,000, so 3 updates per epoch
    hp = parse_hyperparameters(REQUIRED)

    schedule = _learning_rate_schedule(hp, rows=2500)

    assert schedule.step == 3
    assert schedule.factor == AUTO_LR_SCHEDULER_FACTOR
    assert schedule.rates(np.array([0.01]), update_number=4) == pytest.approx(
        0.01 * AUTO_LR_SCHEDULER_FACTOR
    )


def test_schedule_off_is_constant():
    hp = parse_hyperparameters(REQUIRED | {"use_lr_scheduler": "false"})

    schedule = _learning_rate_schedule(hp, rows=2500)

    assert schedule.rates(np.array([0.01]), update_number=1000).tolist() == [0.01]


def test_train_auto_bias_lr_mult_fits_rare_class():
    # Given 5% positives and 2 updates per epoch, so the bias has far to go in few steps
    train_x, train_y = make_blobs(2000, seed=1, positive_share=0.05)
    validation_x, validation_y = make_blobs(800, seed=2, positive_share=0.05)
    settings = REQUIRED | {"num_models": "1", "mini_batch_size": "1000", "learning_rate": "0.01"}

    # When the bias learns at the auto rate, then at the weights' rate
    auto = train(train_x, train_y, validation_x, validation_y, settings, seed=0)
    same_rate = train(
        train_x, train_y, validation_x, validation_y, settings | {"bias_lr_mult": "1"}, seed=0
    )

    # Then the auto rate reaches a clearly lower validation loss
    auto_loss = auto.metrics["validation:objective_loss"]
    same_rate_loss = same_rate.metrics["validation:objective_loss"]
    assert auto_loss < 0.8 * same_rate_loss


def test_train_scheduler_changes_model(blobs):
    settings = REQUIRED | {"num_models": "1", "lr_scheduler_factor": "0.5"}

    scheduled = train(*blobs, settings, seed=3)
    constant = train(*blobs, settings | {"use_lr_scheduler": "false"}, seed=3)

    assert not np.array_equal(scheduled.model.weights, constant.model.weights)


def test_train_scheduler_freezes_after_step(blobs):
    # Given a factor that leaves almost no learning rate after the first epoch's updates
    settings = REQUIRED | {
        "num_models": "1",
        "learning_rate": "0.05",
        "mini_batch_size": "100",
        "lr_scheduler_factor": "1e-9",
        "lr_scheduler_minimum_lr": "1e-12",
    }

    # When the job runs 1 epoch, then 5 epochs with the scheduler and 5 without
    one_epoch = train(*blobs, settings | {"epochs": "1"}, seed=4)
    scheduled = train(*blobs, settings | {"epochs": "5"}, seed=4)
    constant = train(*blobs, settings | {"epochs": "5", "use_lr_scheduler": "false"}, seed=4)

    # Then only the constant rate moves the weights after the first epoch
    np.testing.assert_allclose(scheduled.model.weights, one_epoch.model.weights, atol=1e-6)
    assert not np.allclose(constant.model.weights, one_epoch.model.weights, atol=1e-3)


# --- feature scaling ----------------------------------------------------------------------------


def test_scaler_raises_small_deviations():
    # Given a constant feature, a rarely non-zero feature and two spread features
    rng = np.random.default_rng(0)
    rows = 1000
    rare = np.zeros(rows)
    rare[:2] = 1.0
    features = np.column_stack(
        [np.full(rows, 0.5), rare, rng.normal(0, 1.0, rows), rng.normal(0, 3.0, rows)]
    ).astype(np.float32)
    hp = parse_hyperparameters({"feature_dim": "4", "predictor_type": "binary_classifier"})

    scaler = _fit_scaler(features, hp, rng)

    std = features.astype(np.float64).std(axis=0)
    floor = 0.5 * np.median(std[1:])
    assert scaler.scale[0] == 1.0
    assert scaler.scale[1] == pytest.approx(floor)
    assert scaler.scale[2] == pytest.approx(std[2])
    assert scaler.scale[3] == pytest.approx(std[3])


def test_scaler_without_normalization():
    features = np.array([[0.0, 10.0], [2.0, 30.0]], dtype=np.float32)
    hp = parse_hyperparameters(
        {"feature_dim": "2", "predictor_type": "binary_classifier", "normalize_data": "false"}
    )

    scaler = _fit_scaler(features, hp, np.random.default_rng(0))

    np.testing.assert_array_equal(scaler.scale, [1.0, 1.0])
    np.testing.assert_array_equal(scaler.mean, [1.0, 20.0])


# --- threshold calibration and AUC --------------------------------------------------------------


def test_calibrate_accuracy_threshold():
    # Given logits where a cut between 0.5 and 1.5 misclassifies only one row
    logits = np.array([3.0, 2.0, 1.5, 0.5, 0.0, -1.0])
    labels = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    hp = parse_hyperparameters(REQUIRED)

    threshold = _calibrate_threshold(logits, labels, hp)

    assert threshold == 1.0


def test_calibrate_target_recall():
    # Given recall >= 0.75 needs all three positives, so the cut falls below logit 0.0
    logits = np.array([3.0, 2.0, 1.5, 0.5, 0.0, -1.0])
    labels = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    settings = REQUIRED | {
        "binary_classifier_model_selection_criteria": "precision_at_target_recall",
        "target_recall": "0.75",
    }

    threshold = _calibrate_threshold(logits, labels, parse_hyperparameters(settings))

    assert threshold == -0.5


def test_calibrate_target_precision():
    # Given precision stays >= 0.9 only above the first negative, which has logit 1.5
    logits = np.array([3.0, 2.0, 1.5, 0.5, 0.0, -1.0])
    labels = np.array([1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    settings = REQUIRED | {
        "binary_classifier_model_selection_criteria": "recall_at_target_precision",
        "target_precision": "0.9",
    }

    threshold = _calibrate_threshold(logits, labels, parse_hyperparameters(settings))

    assert threshold == 1.75


def test_calibrate_ties_share_label():
    # Given three rows with the same logit and mixed labels
    logits = np.array([2.0, 1.0, 1.0, 1.0, -2.0])
    labels = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    hp = parse_hyperparameters(REQUIRED)

    threshold = _calibrate_threshold(logits, labels, hp)

    # Then the cut falls between distinct logits, never inside the tie
    assert threshold == -0.5


def test_roc_auc_matches_sklearn():
    rng = np.random.default_rng(0)
    labels = (rng.random(500) < 0.4).astype(np.float64)
    logits = np.round(rng.normal(size=500) + labels, 1)

    assert _roc_auc(logits, labels) == pytest.approx(roc_auc_score(labels, logits))


def test_roc_auc_single_class():
    assert math.isnan(_roc_auc(np.array([0.1, 0.2]), np.array([1.0, 1.0])))


# --- LinearModel ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(blobs):
    return train(*blobs, REQUIRED).model


def test_predict_dtypes_and_range(model, blobs):
    scores, labels = model.predict(blobs[2])

    assert scores.dtype == np.float32
    assert labels.dtype == np.float32
    assert scores.min() >= 0.0
    assert scores.max() <= 1.0
    assert set(np.unique(labels)) <= {0.0, 1.0}


def test_predict_labels_follow_threshold(model, blobs):
    scores, labels = model.predict(blobs[2])
    logits = model.logits(blobs[2])

    np.testing.assert_array_equal(labels == 1.0, logits >= model.threshold_logit)


def test_predict_wrong_width(model):
    with pytest.raises(ValueError, match=f"\\(n, {DIM}\\)"):
        model.predict(np.zeros((3, DIM + 1), dtype=np.float32))


def test_tar_gz_round_trip(model, blobs):
    restored = LinearModel.from_tar_gz(model.to_tar_gz())

    np.testing.assert_array_equal(restored.weights, model.weights)
    assert restored.bias == model.bias
    assert restored.threshold_logit == model.threshold_logit
    np.testing.assert_array_equal(restored.predict(blobs[2])[0], model.predict(blobs[2])[0])


def rebuild_archive(archive: bytes, replace: dict[str, bytes]) -> bytes:
    """Copy a model archive, swapping the payload of the named members."""
    output = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source:
        with tarfile.open(fileobj=output, mode="w:gz") as target:
            for info in source.getmembers():
                payload = replace.get(info.name, source.extractfile(info).read())
                info.size = len(payload)
                target.addfile(info, io.BytesIO(payload))
    return output.getvalue()


def metadata_of(archive: bytes) -> dict:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as source:
        return json.loads(source.extractfile("model.json").read())


def test_tar_gz_rejects_random_bytes():
    with pytest.raises(ValueError, match="gzip-compressed tar"):
        LinearModel.from_tar_gz(b"not a model")


def test_tar_gz_rejects_other_members():
    # Given a tar.gz shaped like the AWS container's output
    output = io.BytesIO()
    with tarfile.open(fileobj=output, mode="w:gz") as tar:
        info = tarfile.TarInfo("model_algo-1")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))

    with pytest.raises(ValueError, match="members"):
        LinearModel.from_tar_gz(output.getvalue())


def test_tar_gz_rejects_other_format(model):
    archive = model.to_tar_gz()
    metadata = metadata_of(archive) | {"format": "mxnet"}

    with pytest.raises(ValueError, match=MODEL_FORMAT):
        LinearModel.from_tar_gz(
            rebuild_archive(archive, {"model.json": json.dumps(metadata).encode()})
        )


def test_tar_gz_rejects_newer_version(model):
    archive = model.to_tar_gz()
    metadata = metadata_of(archive) | {"version": 2}

    with pytest.raises(ValueError, match="version"):
        LinearModel.from_tar_gz(
            rebuild_archive(archive, {"model.json": json.dumps(metadata).encode()})
        )


def test_tar_gz_rejects_wrong_weight_shape(model):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(DIM + 1))

    with pytest.raises(ValueError, match="weights"):
        LinearModel.from_tar_gz(
            rebuild_archive(model.to_tar_gz(), {"weights.npy": buffer.getvalue()})
        )


def test_tar_gz_rejects_pickled_weights(model):
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)

    with pytest.raises(ValueError, match="weights.npy"):
        LinearModel.from_tar_gz(
            rebuild_archive(model.to_tar_gz(), {"weights.npy": buffer.getvalue()})
        )
