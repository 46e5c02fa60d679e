"""Choosing the best training job and the hosting requests."""

import botocore.session
import pytest
from botocore.validate import ParamValidator

from learner_pipeline.config import DeploySettings
from learner_pipeline.deploy import best_training_job, endpoint_config_request, tuning_failure
from learner_pipeline.errors import InvalidRequestError, TuningFailedError
from learner_pipeline.runs import RunNames

RUN_ID = "0123456789abcdef"
NAMES = RunNames.for_run("llp", RUN_ID)
ENVIRONMENT = {
    "LEDGER_TABLE": "ledger", "IDEMPOTENCY_TABLE": "idempotency", "RUNS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:t",
    "ARTIFACTS_BUCKET": "artifacts", "RESULTS_BUCKET": "results", "NAME_PREFIX": "llp",
    "SAGEMAKER_ROLE_ARN": "arn:aws:iam::123456789012:role/sm", "LINEAR_LEARNER_IMAGE": "img:1",
    "HOSTING_INSTANCE_TYPE": "ml.m4.xlarge", "ENDPOINT_TYPE": "instance",
    "SERVERLESS_MEMORY_MIB": "2048", "SERVERLESS_MAX_CONCURRENCY": "1",
}


def settings(**overrides: str) -> DeploySettings:
    return DeploySettings.from_env({**ENVIRONMENT, **overrides})


def validate_with_botocore(request: dict) -> None:
    """Check a request against the CreateEndpointConfig input shape of the installed botocore."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    report = ParamValidator().validate(request, model.operation_model("CreateEndpointConfig").input_shape)
    assert not report.has_errors(), report.generate_report()


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


# --- endpoint configuration -----------------------------------------------------------------


def test_instance_variant_shape():
    request = endpoint_config_request(NAMES, RUN_ID, settings())

    assert request["EndpointConfigName"] == "llp-0123456789abcdef-config"
    assert request["ProductionVariants"] == [{
        "VariantName": "AllTraffic",
        "ModelName": "llp-0123456789abcdef-model",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m4.xlarge",
    }]
    validate_with_botocore(request)


def test_serverless_variant_shape():
    request = endpoint_config_request(
        NAMES, RUN_ID, settings(ENDPOINT_TYPE="serverless", SERVERLESS_MEMORY_MIB="3072", SERVERLESS_MAX_CONCURRENCY="5"),
    )

    assert request["ProductionVariants"] == [{
        "VariantName": "AllTraffic",
        "ModelName": "llp-0123456789abcdef-model",
        "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 5},
    }]
    validate_with_botocore(request)


def test_serverless_variant_has_no_instance():
    variant = endpoint_config_request(NAMES, RUN_ID, settings(ENDPOINT_TYPE="serverless"))["ProductionVariants"][0]

    assert "InstanceType" not in variant
    assert "InitialInstanceCount" not in variant


def test_endpoint_type_case_ignored():
    assert settings(ENDPOINT_TYPE="Serverless").endpoint_type == "serverless"


@pytest.mark.parametrize("memory", ["1024", "2048", "3072", "4096", "5120", "6144"])
def test_serverless_memory_accepted(memory):
    assert settings(SERVERLESS_MEMORY_MIB=memory).serverless_memory_mib == int(memory)


@pytest.mark.parametrize("memory", ["512", "1000", "1536", "7168", "0"])
def test_serverless_memory_rejected(memory):
    with pytest.raises(InvalidRequestError) as caught:
        settings(ENDPOINT_TYPE="serverless", SERVERLESS_MEMORY_MIB=memory)

    assert caught.value.code == "CONFIG_INVALID"
    assert "SERVERLESS_MEMORY_MIB" in caught.value.message
    assert "6144" in caught.value.message


@pytest.mark.parametrize(("name", "value"), [
    ("ENDPOINT_TYPE", "lambda"),
    ("SERVERLESS_MAX_CONCURRENCY", "0"),
    ("SERVERLESS_MAX_CONCURRENCY", "201"),
    ("SERVERLESS_MAX_CONCURRENCY", "many"),
])
def test_deploy_settings_rejected(name, value):
    with pytest.raises(InvalidRequestError) as caught:
        settings(**{name: value})

    assert caught.value.code == "CONFIG_INVALID"
    assert name in caught.value.message


@pytest.mark.parametrize("name", ["ENDPOINT_TYPE", "SERVERLESS_MEMORY_MIB", "SERVERLESS_MAX_CONCURRENCY"])
def test_deploy_settings_missing(name):
    environment = {key: value for key, value in ENVIRONMENT.items() if key != name}

    with pytest.raises(InvalidRequestError) as caught:
        DeploySettings.from_env(environment)

    assert caught.value.code == "CONFIG_MISSING"
    assert name in caught.value.message
