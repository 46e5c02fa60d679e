"""Prepare handler on the sample ingest event, against moto resources from template.yaml."""

import json

import boto3
import pytest

from learner_pipeline.recordio import read_dense_tensor
from tests.support import digits_dataset, physical, s3_event, upload


def ledger_item(stack, run_id):
    table = boto3.resource("dynamodb").Table(physical(stack, "LedgerTable"))
    return table.get_item(Key={"run_id": run_id}).get("Item")


def artifact_keys(stack, run_id):
    listing = boto3.client("s3").list_objects_v2(Bucket=physical(stack, "ArtifactsBucket"), Prefix=f"runs/{run_id}/")
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_sample_event_prepares_run(stack, invoke, event):
    # Given the tutorial's file uploaded under the sample event's key
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset())
    notification = s3_event(event("ingest_object_created.json"), **uploaded)

    # When the prepare function receives the event
    result = invoke("PrepareFunction", notification)

    # Then shards, the test split and the manifest exist, and the run waits for tuning
    run_id = result["run_id"]
    assert result["outcome"] == "prepared"
    keys = artifact_keys(stack, run_id)
    assert f"runs/{run_id}/manifest.json" in keys
    assert f"runs/{run_id}/data/train/part-00000.rec" in keys
    assert f"runs/{run_id}/data/validation/part-00000.rec" in keys
    assert f"runs/{run_id}/data/test/features.npy" in keys
    assert ledger_item(stack, run_id)["status"] == "PREPARING"


def test_manifest_describes_data(stack, invoke, event):
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset())
    run_id = invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))["run_id"]

    s3 = boto3.client("s3")
    bucket = physical(stack, "ArtifactsBucket")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"runs/{run_id}/manifest.json")["Body"].read())
    assert manifest["feature_dim"] == 784
    assert manifest["rows"] == {"train": 300, "validation": 100, "test": 100}
    assert manifest["positive_label"] == 0
    assert manifest["source"]["key"] == "uploads/mnist.pkl.gz"

    shard = s3.get_object(Bucket=bucket, Key=f"runs/{run_id}/data/train/part-00000.rec")["Body"].read()
    features, labels = read_dense_tensor(shard)
    assert features.shape == (300, 784)
    assert features.dtype.name == "float32"
    assert set(labels.tolist()) == {0.0, 1.0}
    assert labels.sum() == 30  # digit 0 is every tenth row


@pytest.mark.parametrize("key", ["my uploads/mnist final.pkl.gz", "données/été-数字.pkl.gz",
                                 "a/" + "deep-folder/" * 60 + "mnist.pkl.gz", "v1.2.3/mnist.v2.pkl.gz",
                                 "c++ notes/mnist+v2.pkl.gz"])
def test_odd_keys_prepare(stack, invoke, event, key):
    uploaded = upload(stack, key, digits_dataset(rows=(60, 20, 20)))
    result = invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))
    assert result["outcome"] == "prepared"


def test_url_encoded_key_prepares(stack, invoke, event):
    # Given an event that carries the key URL-encoded, as S3 notifications do
    uploaded = upload(stack, "my uploads/mnist final.pkl.gz", digits_dataset(rows=(60, 20, 20)))
    uploaded["key"] = "my+uploads/mnist+final.pkl.gz"

    result = invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))

    assert result["outcome"] == "prepared"


def test_repeated_event_is_one_run(stack, invoke, event):
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset(rows=(60, 20, 20)))
    notification = s3_event(event("ingest_object_created.json"), **uploaded)

    first = invoke("PrepareFunction", notification)
    second = invoke("PrepareFunction", {**notification, "id": "another-delivery"})

    assert second["run_id"] == first["run_id"]
    assert second == first  # the idempotency record returns the first result


def test_bad_file_fails_run(stack, invoke, event):
    # Given a file that is not gzip at all
    uploaded = upload(stack, "uploads/notes.pkl.gz", b"this is not a dataset")

    result = invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))

    # Then the run is FAILED with a code, status.json records it, and no artifact was written
    run_id = result["run_id"]
    item = ledger_item(stack, run_id)
    assert item["status"] == "FAILED"
    assert item["error_code"] == "DATASET_NOT_GZIP"
    status = json.loads(boto3.client("s3").get_object(
        Bucket=physical(stack, "ResultsBucket"), Key=f"runs/{run_id}/status.json")["Body"].read())
    assert status["status"] == "FAILED"
    assert artifact_keys(stack, run_id) == []
