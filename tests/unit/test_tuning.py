"""The tuning job request built from a manifest and the stack's settings."""

import pytest

from learner_pipeline.config import TuningSettings
from learner_pipeline.errors import InvalidRequestError
from learner_pipeline.tuning import build_tuning_request

ENVIRONMENT = {
    "LEDGER_TABLE": "ledger", "IDEMPOTENCY_TABLE": "idempotency", "RUNS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
    "ARTIFACTS_BUCKET": "artifacts", "RESULTS_BUCKET": "results", "NAME_PREFIX": "llp",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm", "LINEAR_LEARNER_IMAGE": "img:1",
    "TUNING_STRATEGY": "Bayesian", "MAX_JOBS": "6", "MAX_PARALLEL_JOBS": "2", "WD_RANGE": "1e-7,1",
    "LEARNING_RATE_RANGE": "1e-5,1", "MINI_BATCH_SIZE_RANGE": "100,2000",
    "OBJECTIVE_METRIC": "validation:binary_f_beta", "OBJECTIVE_TYPE": "Maximize",
    "TRAINING_INSTANCE_TYPE": "ml.c4.xlarge", "TRAINING_INSTANCE_COUNT": "1",
}
MANIFEST = {"run_id": "0123456789abcdef", "feature_dim": 784}


def test_request_has_tutorial_settings():
    request = build_tuning_request(MANIFEST, TuningSettings.from_env(ENVIRONMENT))
    config = request["HyperParameterTuningJobConfig"]
    ranges = config["ParameterRanges"]

    assert request["HyperParameterTuningJobName"] == "llp-0123456789abcdef"
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:binary_f_beta"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}
    assert {r["Name"]: (r["MinValue"], r["MaxValue"]) for r in ranges["ContinuousParameterRanges"]} == {
        "wd": ("1e-7", "1"), "learning_rate": ("1e-5", "1")}
    assert ranges["IntegerParameterRanges"][0] == {"Name": "mini_batch_size", "MinValue": "100", "MaxValue": "2000",
                                                   "ScalingType": "Auto"}


def test_request_static_hyperparameters():
    definition = build_tuning_request(MANIFEST, TuningSettings.from_env(ENVIRONMENT))["TrainingJobDefinition"]
    assert definition["StaticHyperParameters"] == {"feature_dim": "784", "predictor_type": "binary_classifier"}
    assert definition["OutputDataConfig"]["S3OutputPath"] == "s3://artifacts/runs/0123456789abcdef/models/"


def test_channels_are_recordio():
    definition = build_tuning_request(MANIFEST, TuningSettings.from_env(ENVIRONMENT))["TrainingJobDefinition"]
    channels = {channel["ChannelName"]: channel for channel in definition["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    for channel in channels.values():
        assert channel["ContentType"] == "application/x-recordio-protobuf"
    assert channels["train"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://artifacts/runs/0123456789abcdef/data/train/"


def test_multi_instance_shards_train():
    settings = TuningSettings.from_env({**ENVIRONMENT, "TRAINING_INSTANCE_COUNT": "3"})
    definition = build_tuning_request(MANIFEST, settings)["TrainingJobDefinition"]
    channels = {channel["ChannelName"]: channel["DataSource"]["S3DataSource"] for channel in definition["InputDataConfig"]}
    assert channels["train"]["S3DataDistributionType"] == "ShardedByS3Key"
    assert channels["validation"]["S3DataDistributionType"] == "FullyReplicated"
    assert definition["ResourceConfig"]["InstanceCount"] == 3


def test_manifest_without_feature_dim():
    with pytest.raises(InvalidRequestError) as caught:
        build_tuning_request({"run_id": "0123456789abcdef"}, TuningSettings.from_env(ENVIRONMENT))
    assert caught.value.code == "MANIFEST_INVALID"


@pytest.mark.parametrize(("name", "value"), [("MAX_JOBS", "zero"), ("WD_RANGE", "1"), ("WD_RANGE", "1,0.5"),
                                             ("NAME_PREFIX", "")])
def test_bad_settings_rejected(name, value):
    with pytest.raises(InvalidRequestError) as caught:
        TuningSettings.from_env({**ENVIRONMENT, name: value})
    assert name in caught.value.message


@pytest.mark.parametrize(("name", "value", "parameters"), [
    ("WD_RANGE", "abc,1", "template parameters WdMin and WdMax"),
    ("LEARNING_RATE_RANGE", "1,0.5", "template parameters LearningRateMin and LearningRateMax"),
    ("MAX_JOBS", "0", "template parameter MaxJobs"),
])
def test_bad_settings_name_parameters(name, value, parameters):
    # Given a value that a stack's parameter overrides put in the environment
    # When the settings are read, Then the error names the parameters to change
    with pytest.raises(InvalidRequestError) as caught:
        TuningSettings.from_env({**ENVIRONMENT, name: value})

    assert caught.value.code == "CONFIG_INVALID"
    assert f"({parameters})" in caught.value.message


def test_mini_batch_bounds_whole_numbers():
    # Given bounds that CloudFormation's Number type accepts in exponent form
    settings = TuningSettings.from_env({**ENVIRONMENT, "MINI_BATCH_SIZE_RANGE": "1e2,2e3"})

    # Then the tuning request gets them as plain integers
    assert settings.mini_batch_size_range == ("100", "2000")


def test_mini_batch_fraction_rejected():
    with pytest.raises(InvalidRequestError) as caught:
        TuningSettings.from_env({**ENVIRONMENT, "MINI_BATCH_SIZE_RANGE": "100.5,2000"})

    assert caught.value.code == "CONFIG_INVALID"
    assert "MiniBatchSizeMin and MiniBatchSizeMax" in caught.value.message


def test_empty_instance_type_names_parameter():
    with pytest.raises(InvalidRequestError) as caught:
        TuningSettings.from_env({**ENVIRONMENT, "TRAINING_INSTANCE_TYPE": ""})

    assert caught.value.code == "CONFIG_MISSING"
    assert "template parameter TrainingInstanceType" in caught.value.message


def test_infinite_range_rejected():
    with pytest.raises(InvalidRequestError) as caught:
        TuningSettings.from_env({**ENVIRONMENT, "WD_RANGE": "1e-7,inf"})
    assert caught.value.code == "CONFIG_INVALID"
