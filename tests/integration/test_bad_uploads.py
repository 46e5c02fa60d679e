"""Every kind of bad upload ends as a FAILED run with its code, and nothing else happens."""

import json
from pathlib import Path

import boto3
import pytest

from tests.corpus.make_bad_files import (CANARY_NAME, CORPUS_MAX_COMPRESSED_BYTES, CORPUS_MAX_DECOMPRESSED_BYTES,
                                         build_corpus, build_valid_variants)
from tests.integration.conftest import HandlerRunner, mocked_stack
from tests.support import physical, s3_event, upload

MIB = 1 << 20


# Small enough that the corpus's gzip bombs pass the cap, large enough for every valid variant.
PARAMETERS = {"MaxUploadMiB": CORPUS_MAX_COMPRESSED_BYTES // MIB, "MaxDecompressedMiB": CORPUS_MAX_DECOMPRESSED_BYTES // MIB}


@pytest.fixture(scope="module")
def stack():
    # One stack for the module: every case uploads under its own key, so its run is its own.
    with mocked_stack(PARAMETERS) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def invoke(stack):
    runner = HandlerRunner(stack)
    yield runner
    runner.close()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    directory = tmp_path_factory.mktemp("corpus")
    return directory, build_corpus(directory)


@pytest.fixture(scope="module")
def valid_files(tmp_path_factory):
    return build_valid_variants(tmp_path_factory.mktemp("valid"))


def case_names():
    import tempfile
    with tempfile.TemporaryDirectory() as directory:
        return sorted(build_corpus(Path(directory)))


def run_upload(stack, invoke, event, path: Path):
    uploaded = upload(stack, f"uploads/{path.parent.name}/{path.name}", path.read_bytes())
    return invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))


@pytest.mark.parametrize("case", case_names())
def test_bad_upload_verdict(stack, invoke, event, corpus, case):
    directory, cases = corpus
    path, expected_code = cases[case]

    # When the bad file is uploaded
    result = run_upload(stack, invoke, event, path)

    # Then the run FAILED with the expected code and a message, everywhere people look
    run_id = result["run_id"]
    item = boto3.resource("dynamodb").Table(physical(stack, "LedgerTable")).get_item(Key={"run_id": run_id})["Item"]
    assert item["status"] == "FAILED"
    assert item["error_code"] == expected_code
    assert len(item["error_message"]) > 20
    status = json.loads(boto3.client("s3").get_object(
        Bucket=physical(stack, "ResultsBucket"), Key=f"runs/{run_id}/status.json")["Body"].read())
    assert status["error_code"] == expected_code
    # And nothing was written for training, no tuning job exists, the upload is still there
    artifacts = boto3.client("s3").list_objects_v2(Bucket=physical(stack, "ArtifactsBucket"), Prefix=f"runs/{run_id}/")
    assert artifacts.get("KeyCount", 0) == 0
    assert boto3.client("sagemaker").list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"] == []
    assert boto3.client("s3").head_object(Bucket=physical(stack, "IngestBucket"), Key=f"uploads/{path.parent.name}/{path.name}")
    # And no pickle ran code
    assert not list(directory.rglob(f"*{CANARY_NAME}*"))
    assert not list(Path.cwd().rglob(f"{CANARY_NAME}*"))


def test_valid_variants_prepare(stack, invoke, event, valid_files):
    for name, path in sorted(valid_files.items()):
        result = run_upload(stack, invoke, event, path)
        assert result["outcome"] == "prepared", name


def test_oversized_upload_rejected_before_download(stack, invoke, event, tmp_path):
    # Given an object larger than MaxUploadMiB
    path = tmp_path / "huge.pkl.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(CORPUS_MAX_COMPRESSED_BYTES + 1))

    result = run_upload(stack, invoke, event, path)

    item = boto3.resource("dynamodb").Table(physical(stack, "LedgerTable")).get_item(
        Key={"run_id": result["run_id"]})["Item"]
    assert item["error_code"] == "DATASET_TOO_LARGE"
    assert "MaxUploadMiB" in item["error_message"]
