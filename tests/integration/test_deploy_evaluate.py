"""Deploy and evaluate handlers on the sample SageMaker events, with the sandbox engine behind moto.

moto completes a tuning job at once with a placeholder best job, so these tests let the sandbox's
SageMaker engine run real trials and serve the endpoint; the handlers then receive the sample
events from events/, renamed to the run's resources.
"""

import json

import boto3
import pytest

from sandbox.engine import SageMakerEngine
from tests.support import digits_dataset, physical, s3_event, upload


@pytest.fixture
def engine(stack):
    emitted = []
    with SageMakerEngine(emitted.append, seed=0) as running:
        yield running


def renamed(template: dict, old: str, new: str) -> dict:
    """Return the sample event with the sample run's resource names replaced by this run's."""
    return json.loads(json.dumps(template).replace(old, new))


SAMPLE_NAME = "llp-3f9a1c2b7d4e5f60"


def ledger_item(stack, run_id):
    return boto3.resource("dynamodb").Table(physical(stack, "LedgerTable")).get_item(Key={"run_id": run_id})["Item"]


def tuned_run(stack, invoke, event, engine):
    """Prepare and tune a run; return its run id once the engine finished the trials."""
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset(rows=(300, 100, 100)))
    run_id = invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))["run_id"]
    bucket = physical(stack, "ArtifactsBucket")
    key = f"runs/{run_id}/manifest.json"
    head = boto3.client("s3").head_object(Bucket=bucket, Key=key)
    invoke("StartTuningFunction", s3_event(event("manifest_object_created.json"), bucket, key,
                                           head["ContentLength"], head["ETag"].strip('"'), None))
    engine.run_until_idle()
    return run_id


def test_completed_tuning_deploys(stack, invoke, event, engine):
    run_id = tuned_run(stack, invoke, event, engine)

    result = invoke("DeployFunction", renamed(event("tuning_completed.json"), SAMPLE_NAME, f"llp-{run_id}"))

    assert result["outcome"] == "deploying"
    endpoint = boto3.client("sagemaker").describe_endpoint(EndpointName=f"llp-{run_id}")
    assert endpoint["EndpointConfigName"] == f"llp-{run_id}-config"
    item = ledger_item(stack, run_id)
    assert item["status"] == "DEPLOYING"
    assert item["best_training_job"].startswith(f"llp-{run_id}-")


def test_failed_tuning_fails_run(stack, invoke, event, engine):
    run_id = tuned_run(stack, invoke, event, engine)
    # Given the run's tuning job reported Failed (a repeat of the state change is ignored)
    failed = renamed(event("tuning_failed.json"), SAMPLE_NAME, f"llp-{run_id}")

    result = invoke("DeployFunction", failed)

    assert result["outcome"] == "failed"
    item = ledger_item(stack, run_id)
    assert item["status"] == "FAILED"
    assert item["error_code"] == "TUNING_FAILED"
    assert "All training jobs failed" in item["error_message"]
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []


def test_in_service_endpoint_evaluates(stack, invoke, event, engine):
    run_id = tuned_run(stack, invoke, event, engine)
    invoke("DeployFunction", renamed(event("tuning_completed.json"), SAMPLE_NAME, f"llp-{run_id}"))
    engine.run_until_idle()

    result = invoke("EvaluateFunction", renamed(event("endpoint_in_service.json"), SAMPLE_NAME, f"llp-{run_id}"))

    # Then the four result files exist, the run SUCCEEDED and the endpoint is gone
    assert result["outcome"] == "succeeded"
    listing = boto3.client("s3").list_objects_v2(Bucket=physical(stack, "ResultsBucket"), Prefix=f"runs/{run_id}/")
    names = {item["Key"].rsplit("/", 1)[1] for item in listing["Contents"]}
    assert {"metrics.json", "confusion_matrix.json", "confusion_matrix.csv", "report.html", "status.json"} <= names
    assert ledger_item(stack, run_id)["status"] == "SUCCEEDED"
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == []
    csv = boto3.client("s3").get_object(Bucket=physical(stack, "ResultsBucket"),
                                        Key=f"runs/{run_id}/confusion_matrix.csv")["Body"].read().decode()
    assert csv.splitlines()[0] == "actual\\predicted,0,1"


def test_failed_endpoint_cleans_up(stack, invoke, event, engine):
    run_id = tuned_run(stack, invoke, event, engine)
    invoke("DeployFunction", renamed(event("tuning_completed.json"), SAMPLE_NAME, f"llp-{run_id}"))

    result = invoke("EvaluateFunction", renamed(event("endpoint_failed.json"), SAMPLE_NAME, f"llp-{run_id}"))

    assert result["outcome"] == "failed"
    item = ledger_item(stack, run_id)
    assert item["error_code"] == "ENDPOINT_FAILED"
    assert "Unable to provision" in item["error_message"]
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []


def test_foreign_endpoint_ignored(stack, invoke, event):
    foreign = renamed(event("endpoint_in_service.json"), SAMPLE_NAME, "someone-elses-endpoint")

    result = invoke("EvaluateFunction", foreign)

    assert result["outcome"] == "ignored"
