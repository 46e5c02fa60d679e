"""The local SageMaker engine: range sampling, trial plans, serving formats and the moto patches."""

import json
import math
import re

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from learner_pipeline.recordio import encode_dense_tensor
from sandbox import serving
from sandbox.engine import SageMakerEngine
from sandbox.linear_learner import LinearModel
from sandbox.tuning import (
    best_index,
    check_name,
    check_parameter_ranges,
    effective_scaling,
    plan_trials,
    sample_continuous,
    sample_integer,
    waves,
)

REGION = "us-east-1"
BUCKET = "engine-data"
FEATURES = 6
TUNING_CONFIG = {
    "Strategy": "Bayesian",
    "HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "validation:binary_f_beta"},
    "ResourceLimits": {"MaxNumberOfTrainingJobs": 5, "MaxParallelTrainingJobs": 2},
    "ParameterRanges": {
        "ContinuousParameterRanges": [
            {"Name": "wd", "MinValue": "1e-7", "MaxValue": "1", "ScalingType": "Auto"},
            {"Name": "learning_rate", "MinValue": "0.01", "MaxValue": "0.2", "ScalingType": "Linear"},
        ],
        "IntegerParameterRanges": [{"Name": "mini_batch_size", "MinValue": "50", "MaxValue": "200", "ScalingType": "Auto"}],
        "CategoricalParameterRanges": [],
    },
}


# Range sampling


def _draws(sampler, spec, count=4000, seed=0):
    rng = np.random.default_rng(seed)
    return np.array([sampler(spec, rng) for _ in range(count)], dtype=float)


def test_linear_sampling_uniform():
    values = _draws(sample_continuous, {"Name": "x", "MinValue": "2", "MaxValue": "4", "ScalingType": "Linear"})

    assert values.min() >= 2
    assert values.max() <= 4
    assert abs(np.mean(values < 3) - 0.5) < 0.05


def test_log_sampling_uniform_in_log_space():
    values = _draws(sample_continuous, {"Name": "x", "MinValue": "1e-6", "MaxValue": "1", "ScalingType": "Logarithmic"})

    assert values.min() >= 1e-6
    assert values.max() <= 1
    # Half the draws fall below the geometric mean 1e-3; linear sampling would put ~0.1% there.
    assert abs(np.mean(values < 1e-3) - 0.5) < 0.05


def test_reverse_log_sampling_near_one():
    values = _draws(sample_continuous, {"Name": "x", "MinValue": "0", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"})

    assert values.min() >= 0
    assert values.max() <= 0.999
    # 1 - x is log-uniform on [0.001, 1], so half the draws exceed 1 - sqrt(0.001).
    assert abs(np.mean(values > 1 - math.sqrt(0.001)) - 0.5) < 0.05


@pytest.mark.parametrize(
    "low, high, expected",
    [(1e-7, 1.0, "Logarithmic"), (100, 2000, "Linear"), (0.0, 1.0, "Linear"), (1, 100, "Logarithmic")],
)
def test_auto_scaling_resolution(low, high, expected):
    assert effective_scaling("Auto", low, high) == expected


def test_integer_linear_covers_bounds():
    values = _draws(sample_integer, {"Name": "n", "MinValue": "1", "MaxValue": "4", "ScalingType": "Linear"}, count=400)

    assert set(values.astype(int)) == {1, 2, 3, 4}


def test_integer_log_in_bounds_and_skewed():
    values = _draws(sample_integer, {"Name": "n", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Logarithmic"})

    assert values.min() >= 1
    assert values.max() <= 1000
    assert np.all(values == np.round(values))
    assert np.mean(values <= 31) > 0.4


@pytest.mark.parametrize(
    "ranges, message",
    [
        ({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}]}, "greater than 0"),
        ({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "2", "MaxValue": "1", "ScalingType": "Linear"}]}, "greater than MaxValue"),
        ({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "ReverseLogarithmic"}]}, "MaxValue < 1"),
        ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "1", "MaxValue": "9", "ScalingType": "ReverseLogarithmic"}]}, "only for continuous"),
        ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "1.5", "MaxValue": "9"}]}, "must be integers"),
        ({"CategoricalParameterRanges": [{"Name": "c", "Values": []}]}, "at least one value"),
    ],
)
def test_invalid_ranges_rejected(ranges, message):
    with pytest.raises(ValueError, match=message):
        check_parameter_ranges(ranges)


# Trial plans


def test_trial_names_follow_sagemaker():
    trials = plan_trials("llp-0123456789abcdef", TUNING_CONFIG, {"feature_dim": "6"})

    assert [trial.index for trial in trials] == [1, 2, 3, 4, 5]
    for trial in trials:
        assert re.fullmatch(r"llp-0123456789abcdef-\d{3}-[0-9a-f]{8}", trial.name), trial.name
        assert len(trial.name) <= 63
    assert trials[0].name.startswith("llp-0123456789abcdef-001-")
    assert len({trial.name for trial in trials}) == 5


def test_trial_hyperparameters_strings():
    trial = plan_trials("job", TUNING_CONFIG, {"feature_dim": "6", "predictor_type": "binary_classifier"})[0]

    assert set(trial.tuned_hyperparameters) == {"wd", "learning_rate", "mini_batch_size"}
    assert trial.hyperparameters["feature_dim"] == "6"
    assert trial.hyperparameters["_tuning_objective_metric"] == "validation:binary_f_beta"
    assert all(isinstance(value, str) for value in trial.hyperparameters.values())
    assert 50 <= int(trial.tuned_hyperparameters["mini_batch_size"]) <= 200
    assert 0.01 <= float(trial.tuned_hyperparameters["learning_rate"]) <= 0.2


def test_trial_plan_depends_on_seed_only():
    first = plan_trials("llp-aaaa", TUNING_CONFIG, {})
    other_name = plan_trials("llp-bbbb", TUNING_CONFIG, {})
    other_seed = plan_trials("llp-aaaa", TUNING_CONFIG, {}, seed=1)

    assert [t.tuned_hyperparameters for t in first] == [t.tuned_hyperparameters for t in other_name]
    assert [t.tuned_hyperparameters for t in first] != [t.tuned_hyperparameters for t in other_seed]


def test_waves_respect_parallel_limit():
    trials = plan_trials("job", TUNING_CONFIG, {})

    assert [len(wave) for wave in waves(trials, 2)] == [2, 2, 1]


@pytest.mark.parametrize(
    "values, objective, expected",
    [([0.2, None, 0.9, 0.9], "Maximize", 2), ([0.2, None, 0.1], "Minimize", 2), ([None, float("nan")], "Maximize", None)],
)
def test_best_index(values, objective, expected):
    assert best_index(values, objective) == expected


@pytest.mark.parametrize("name, limit", [("a" * 33, 32), ("bad_name", 63), ("-leading", 63)])
def test_invalid_names_rejected(name, limit):
    with pytest.raises(ValueError, match="validation error"):
        check_name("hyperParameterTuningJobName", name, limit)


# Serving formats


ROWS = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/csv", b"0,1,2\n3,4,5\n"),
        ("text/csv; charset=utf-8", b"0,1,2\n3,4,5"),
        ("application/json", json.dumps({"instances": [{"features": [0, 1, 2]}, {"features": [3, 4, 5]}]}).encode()),
        ("application/json", json.dumps({"instances": [{"data": {"features": {"values": [0, 1, 2]}}}, {"data": {"features": {"values": [3, 4, 5]}}}]}).encode()),
        ("application/jsonlines", b'{"features": [0, 1, 2]}\n{"features": [3, 4, 5]}\n'),
        ("application/x-recordio-protobuf", encode_dense_tensor(ROWS.astype(np.float32))),
    ],
)
def test_request_formats_parsed(content_type, body):
    np.testing.assert_array_equal(serving.parse_features(body, content_type), ROWS)


@pytest.mark.parametrize(
    "content_type, body, status",
    [("text/plain", b"1,2", 415), ("text/csv", b"", 400), ("application/json", b'{"rows": []}', 400), ("text/csv", b"1,x", 400)],
)
def test_bad_requests_rejected(content_type, body, status):
    with pytest.raises(serving.ContainerError) as raised:
        serving.parse_features(body, content_type)

    assert raised.value.status == status


def test_labels_int_for_json_float_for_recordio():
    scores, labels = np.array([0.9, 0.1], dtype=np.float32), np.array([1.0, 0.0], dtype=np.float32)

    as_int, _ = serving.encode_predictions(scores, labels, accept="application/json", label_as_float=False)
    as_float, _ = serving.encode_predictions(scores, labels, accept="application/json", label_as_float=True)

    assert json.loads(as_int)["predictions"][0]["predicted_label"] == 1
    assert isinstance(json.loads(as_int)["predictions"][0]["predicted_label"], int)
    assert isinstance(json.loads(as_float)["predictions"][0]["predicted_label"], float)


# The engine behind moto


def _separable(count, seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(count, FEATURES)).astype(np.float32)
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(np.float32)
    return features, labels


def _channel(name):
    return {
        "ChannelName": name,
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/{name}/"}},
        "ContentType": "application/x-recordio-protobuf",
    }


def _tuning_request(name="llp-test", static=None, config=None):
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config or TUNING_CONFIG,
        "TrainingJobDefinition": {
            "StaticHyperParameters": static or {"feature_dim": str(FEATURES), "predictor_type": "binary_classifier"},
            "AlgorithmSpecification": {"TrainingImage": "linear-learner:1", "TrainingInputMode": "File"},
            "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
            "InputDataConfig": [_channel("train"), _channel("validation")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
            "ResourceConfig": {"InstanceType": "ml.c4.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    }


@pytest.fixture
def aws():
    """moto with the engine started, a data bucket with two shards per channel, and the emitted events."""
    emitted = []
    with mock_aws(), SageMakerEngine(emitted.append) as engine:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        for seed, channel in enumerate(("train", "validation")):
            features, labels = _separable(600, seed)
            for shard in range(2):
                rows = slice(shard * 300, (shard + 1) * 300)
                s3.put_object(Bucket=BUCKET, Key=f"data/{channel}/shard-{shard}", Body=encode_dense_tensor(features[rows], labels[rows]))
        yield {
            "engine": engine,
            "events": emitted,
            "s3": s3,
            "sagemaker": boto3.client("sagemaker", region_name=REGION),
            "runtime": boto3.client("sagemaker-runtime", region_name=REGION),
        }


def _statuses(emitted, detail_type, field):
    return [event["detail"][field] for event in emitted if event["detail-type"] == detail_type]


def test_tuning_job_completes_with_best_trial(aws):
    sagemaker, engine = aws["sagemaker"], aws["engine"]

    # When a tuning job is created and the engine runs its waves
    sagemaker.create_hyper_parameter_tuning_job(**_tuning_request())
    in_progress = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test")
    engine.run_until_idle()
    done = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test")
    trials = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test", MaxResults=100)

    # Then it went InProgress -> Completed with the trial of highest objective as best
    assert in_progress["HyperParameterTuningJobStatus"] == "InProgress"
    assert "BestTrainingJob" not in in_progress
    assert done["HyperParameterTuningJobStatus"] == "Completed"
    assert done["TrainingJobStatusCounters"]["Completed"] == 5
    assert done["ObjectiveStatusCounters"]["Succeeded"] == 5
    summaries = trials["TrainingJobSummaries"]
    assert len(summaries) == 5
    best_value = max(summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for summary in summaries)
    assert done["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == best_value
    assert best_value > 0.9


def test_training_jobs_described(aws):
    sagemaker, engine, s3 = aws["sagemaker"], aws["engine"], aws["s3"]
    sagemaker.create_hyper_parameter_tuning_job(**_tuning_request())
    engine.run_until_idle()
    best = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test")["BestTrainingJob"]

    job = sagemaker.describe_training_job(TrainingJobName=best["TrainingJobName"])

    assert job["TrainingJobStatus"] == "Completed"
    assert job["TuningJobArn"].endswith(":hyper-parameter-tuning-job/llp-test")
    assert job["HyperParameters"]["feature_dim"] == str(FEATURES)
    assert job["HyperParameters"]["wd"] == best["TunedHyperParameters"]["wd"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/models/{best['TrainingJobName']}/output/model.tar.gz"
    assert "validation:binary_f_beta" in {metric["MetricName"] for metric in job["FinalMetricDataList"]}
    artifact = s3.get_object(Bucket=BUCKET, Key=f"models/{best['TrainingJobName']}/output/model.tar.gz")["Body"].read()
    assert LinearModel.from_tar_gz(artifact).feature_dim == FEATURES


def test_trials_run_in_waves(aws):
    sagemaker, engine, emitted = aws["sagemaker"], aws["engine"], aws["events"]
    sagemaker.create_hyper_parameter_tuning_job(**_tuning_request())

    # Each advance runs one wave of at most MaxParallelTrainingJobs (2) trials.
    engine.advance()
    first_wave = _statuses(emitted, "SageMaker Training Job State Change", "TrainingJobStatus")
    engine.run_until_idle()

    assert first_wave == ["InProgress", "InProgress", "Completed", "Completed"]
    assert _statuses(emitted, "SageMaker HyperParameter Tuning Job State Change", "HyperParameterTuningJobStatus") == ["InProgress", "Completed"]
    assert engine.stats.training_jobs_created == 5


def test_trial_listing_pages(aws):
    sagemaker, engine = aws["sagemaker"], aws["engine"]
    sagemaker.create_hyper_parameter_tuning_job(**_tuning_request())
    engine.run_until_idle()

    first = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test", MaxResults=3)
    second = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="llp-test", MaxResults=3, NextToken=first["NextToken"]
    )

    assert len(first["TrainingJobSummaries"]) == 3
    assert len(second["TrainingJobSummaries"]) == 2
    assert "NextToken" not in second


def test_unreadable_channel_fails_tuning(aws):
    sagemaker, engine, s3 = aws["sagemaker"], aws["engine"], aws["s3"]
    s3.put_object(Bucket=BUCKET, Key="data/train/shard-9", Body=b"not recordio")

    sagemaker.create_hyper_parameter_tuning_job(**_tuning_request())
    engine.run_until_idle()
    job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test")

    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert "shard-9" in job["FailureReason"]
    # The first wave failed entirely, so no further trials were launched.
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert engine.stats.training_jobs_created == 2


def test_bad_hyperparameter_fails_tuning(aws):
    sagemaker, engine, emitted = aws["sagemaker"], aws["engine"], aws["events"]
    static = {"feature_dim": str(FEATURES), "predictor_type": "binary_classifier", "epochs": "zero"}

    sagemaker.create_hyper_parameter_tuning_job(**_tuning_request(static=static))
    engine.run_until_idle()
    job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test")

    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert "epochs" in job["FailureReason"]
    assert emitted[-1]["detail"]["HyperParameterTuningJobStatus"] == "Failed"
    assert emitted[-1]["detail"]["FailureReason"] == job["FailureReason"]


def test_missing_channel_data_fails_tuning(aws):
    sagemaker, engine = aws["sagemaker"], aws["engine"]
    request = _tuning_request()
    request["TrainingJobDefinition"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = f"s3://{BUCKET}/nothing/"

    sagemaker.create_hyper_parameter_tuning_job(**request)
    engine.run_until_idle()
    job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test")

    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert "No S3 objects found" in job["FailureReason"]


def test_long_tuning_name_rejected(aws):
    with pytest.raises(ClientError, match="length less than or equal to 32"):
        aws["sagemaker"].create_hyper_parameter_tuning_job(**_tuning_request(name="llp-" + "a" * 29))


def test_unknown_training_instance_rejected(aws):
    # Given a tuning request for an instance type SageMaker does not train on
    request = _tuning_request()
    request["TrainingJobDefinition"]["ResourceConfig"]["InstanceType"] = "ml.bogus.xlarge"

    # When it is sent, Then it is rejected before any training job exists
    with pytest.raises(ClientError, match="ml.bogus.xlarge"):
        aws["sagemaker"].create_hyper_parameter_tuning_job(**request)
    assert aws["engine"].stats.tuning_jobs_created == 0


def test_log_range_with_zero_rejected(aws):
    config = json.loads(json.dumps(TUNING_CONFIG))
    config["ParameterRanges"]["ContinuousParameterRanges"][0].update(MinValue="0", ScalingType="Logarithmic")

    with pytest.raises(ClientError, match="greater than 0"):
        aws["sagemaker"].create_hyper_parameter_tuning_job(**_tuning_request(config=config))


def _deploy(aws, model_data_url, name="llp-test"):
    sagemaker = aws["sagemaker"]
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
        PrimaryContainer={"Image": "linear-learner:1", "ModelDataUrl": model_data_url},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.m4.xlarge"}],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


@pytest.fixture
def endpoint(aws):
    """An endpoint in service with the best model of a finished tuning job."""
    aws["sagemaker"].create_hyper_parameter_tuning_job(**_tuning_request())
    aws["engine"].run_until_idle()
    best = aws["sagemaker"].describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="llp-test")["BestTrainingJob"]
    job = aws["sagemaker"].describe_training_job(TrainingJobName=best["TrainingJobName"])
    _deploy(aws, job["ModelArtifacts"]["S3ModelArtifacts"])
    aws["engine"].run_until_idle()
    return aws


def test_endpoint_comes_into_service(endpoint):
    statuses = _statuses(endpoint["events"], "SageMaker Endpoint State Change", "EndpointStatus")

    assert statuses == ["CREATING", "IN_SERVICE"]
    assert endpoint["sagemaker"].describe_endpoint(EndpointName="llp-test")["EndpointStatus"] == "InService"


def test_endpoint_without_model_data_fails(aws):
    _deploy(aws, f"s3://{BUCKET}/models/missing/output/model.tar.gz")
    aws["engine"].run_until_idle()

    described = aws["sagemaker"].describe_endpoint(EndpointName="llp-test")
    last_event = aws["events"][-1]["detail"]

    assert described["EndpointStatus"] == "Failed"
    assert "Failed to download model data" in described["FailureReason"]
    assert last_event["EndpointStatus"] == "FAILED"
    assert last_event["FailureReason"] == described["FailureReason"]


def test_invoke_formats_agree(endpoint):
    runtime = endpoint["runtime"]
    features, labels = _separable(50, seed=7)
    bodies = {
        "text/csv": "\n".join(",".join(repr(float(value)) for value in row) for row in features),
        "application/json": json.dumps({"instances": [{"features": row.tolist()} for row in features]}),
        "application/x-recordio-protobuf": encode_dense_tensor(features),
    }

    answers = {
        content_type: json.loads(runtime.invoke_endpoint(EndpointName="llp-test", ContentType=content_type, Body=body)["Body"].read())
        for content_type, body in bodies.items()
    }

    predicted = [prediction["predicted_label"] for prediction in answers["text/csv"]["predictions"]]
    assert predicted == [prediction["predicted_label"] for prediction in answers["application/json"]["predictions"]]
    assert [float(label) for label in predicted] == [prediction["predicted_label"] for prediction in answers["application/x-recordio-protobuf"]["predictions"]]
    assert all(isinstance(label, int) for label in predicted)
    assert all(isinstance(p["predicted_label"], float) for p in answers["application/x-recordio-protobuf"]["predictions"])
    assert np.mean(np.array(predicted) == labels) > 0.9


def test_invoke_unknown_endpoint_rejected(endpoint):
    with pytest.raises(ClientError) as raised:
        endpoint["runtime"].invoke_endpoint(EndpointName="llp-missing", ContentType="text/csv", Body="1,2")

    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert "llp-missing" in raised.value.response["Error"]["Message"]


def test_invoke_wrong_dimension_rejected(endpoint):
    with pytest.raises(ClientError) as raised:
        endpoint["runtime"].invoke_endpoint(EndpointName="llp-test", ContentType="text/csv", Body="1,2,3")

    assert raised.value.response["Error"]["Code"] == "ModelError"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert f"{FEATURES} features" in raised.value.response["Error"]["Message"]


def test_invoke_oversize_body_rejected(endpoint):
    body = b"0," * (serving.MAX_PAYLOAD_BYTES // 2) + b"0"

    with pytest.raises(ClientError) as raised:
        endpoint["runtime"].invoke_endpoint(EndpointName="llp-test", ContentType="text/csv", Body=body)

    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert endpoint["engine"].stats.invoke_endpoint_request_bytes >= serving.MAX_PAYLOAD_BYTES


def test_duplicate_endpoint_rejected(endpoint):
    with pytest.raises(ClientError, match="Cannot create already existing endpoint"):
        endpoint["sagemaker"].create_endpoint(EndpointName="llp-test", EndpointConfigName="llp-test-config")


def test_deleted_endpoint_not_alive(endpoint):
    endpoint["sagemaker"].delete_endpoint(EndpointName="llp-test")

    assert endpoint["engine"].alive_endpoints() == []
    with pytest.raises(ClientError, match="not found"):
        endpoint["runtime"].invoke_endpoint(EndpointName="llp-test", ContentType="text/csv", Body="1,2,3,4,5,6")
