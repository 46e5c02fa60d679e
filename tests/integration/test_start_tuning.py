"""Start-tuning handler on the sample manifest event, after a real prepare."""

import boto3

from tests.support import digits_dataset, physical, s3_event, upload


def prepare(stack, invoke, event):
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset(rows=(60, 20, 20)))
    return invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))["run_id"]


def manifest_event(stack, event, run_id):
    bucket = physical(stack, "ArtifactsBucket")
    key = f"runs/{run_id}/manifest.json"
    head = boto3.client("s3").head_object(Bucket=bucket, Key=key)
    return s3_event(event("manifest_object_created.json"), bucket, key, head["ContentLength"],
                    head["ETag"].strip('"'), None)


def test_manifest_starts_tuning(stack, invoke, event):
    # Given a prepared run
    run_id = prepare(stack, invoke, event)

    # When its manifest event arrives
    result = invoke("StartTuningFunction", manifest_event(stack, event, run_id))

    # Then the tuning job exists with the tutorial's settings and the run is TUNING
    assert result["outcome"] == "tuning"
    job = boto3.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=f"llp-{run_id}")
    limits = job["HyperParameterTuningJobConfig"]["ResourceLimits"]
    assert limits == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 2}
    assert job["TrainingJobDefinition"]["StaticHyperParameters"]["feature_dim"] == "784"
    table = boto3.resource("dynamodb").Table(physical(stack, "LedgerTable"))
    assert table.get_item(Key={"run_id": run_id})["Item"]["status"] == "TUNING"


def test_repeated_manifest_event_one_job(stack, invoke, event):
    run_id = prepare(stack, invoke, event)
    notification = manifest_event(stack, event, run_id)

    invoke("StartTuningFunction", notification)
    invoke("StartTuningFunction", {**notification, "id": "second-delivery"})

    jobs = boto3.client("sagemaker").list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert [job["HyperParameterTuningJobName"] for job in jobs] == [f"llp-{run_id}"]


def test_manifest_of_unknown_run_ignored(stack, invoke, event):
    # Given a manifest event for a run the ledger does not know (the sample event as shipped)
    notification = event("manifest_object_created.json")
    notification["detail"]["bucket"]["name"] = physical(stack, "ArtifactsBucket")

    result = invoke("StartTuningFunction", notification)

    assert result["outcome"] == "ignored"
    assert boto3.client("sagemaker").list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []


def test_corrupt_manifest_fails_run(stack, invoke, event):
    # Given a prepared run whose manifest was overwritten with something that is not JSON
    run_id = prepare(stack, invoke, event)
    boto3.client("s3").put_object(Bucket=physical(stack, "ArtifactsBucket"), Key=f"runs/{run_id}/manifest.json",
                                  Body=b"{not json")

    result = invoke("StartTuningFunction", manifest_event(stack, event, run_id))

    assert result["outcome"] == "failed"
    item = boto3.resource("dynamodb").Table(physical(stack, "LedgerTable")).get_item(Key={"run_id": run_id})["Item"]
    assert item["status"] == "FAILED"
    assert item["error_code"] == "MANIFEST_INVALID"
