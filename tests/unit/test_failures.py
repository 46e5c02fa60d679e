"""Finding the run of a failed invocation from its event."""

from learner_pipeline.failures import parse_failure, run_reference
from learner_pipeline.runs import run_id_for
from tests.conftest import load_event


def test_upload_event_gives_both_key_spellings():
    event = load_event("ingest_object_created.json")
    event["detail"]["object"]["key"] = "my+uploads/mnist.pkl.gz"
    obj = event["detail"]["object"]

    reference = run_reference(event, "llp", ingest_bucket=event["detail"]["bucket"]["name"])

    bucket = event["detail"]["bucket"]["name"]
    assert reference.run_ids == (run_id_for(bucket, "my+uploads/mnist.pkl.gz", obj["version-id"], obj["etag"]),
                                 run_id_for(bucket, "my uploads/mnist.pkl.gz", obj["version-id"], obj["etag"]))
    assert reference.upload["key"] == "my+uploads/mnist.pkl.gz"
    assert not reference.hosting_created


def test_manifest_event_gives_its_run():
    reference = run_reference(load_event("manifest_object_created.json"), "llp", ingest_bucket="other")
    assert reference.run_ids == ("3f9a1c2b7d4e5f60",)
    assert reference.upload is None


def test_sagemaker_events_give_run_and_hosting():
    for name in ("tuning_completed.json", "endpoint_in_service.json"):
        reference = run_reference(load_event(name), "llp")
        assert reference.run_ids == ("3f9a1c2b7d4e5f60",), name
        assert reference.hosting_created, name


def test_foreign_events_give_nothing():
    assert run_reference(load_event("endpoint_in_service.json"), "other").run_ids == ()
    assert run_reference({"source": "aws.ec2", "detail": {}}, "llp").run_ids == ()
    upload = load_event("ingest_object_created.json")
    assert run_reference(upload, "llp", ingest_bucket="not-the-ingest-bucket").run_ids == ()


def test_parse_failure_reads_record():
    failure = parse_failure({
        "requestContext": {"functionArn": "arn:aws:lambda:us-east-1:1:function:stack-EvaluateFunction-X:$LATEST",
                           "approximateInvokeCount": 3},
        "requestPayload": {"source": "aws.sagemaker"},
        "responsePayload": {"errorMessage": "boom", "errorType": "RuntimeError"},
    })
    assert failure.function_name == "stack-EvaluateFunction-X"
    assert failure.attempts == 3
    assert (failure.error_type, failure.error_message) == ("RuntimeError", "boom")


def test_parse_failure_tolerates_missing_parts():
    failure = parse_failure({"responsePayload": "Task timed out after 900.00 seconds"})
    assert failure.error_message == "Task timed out after 900.00 seconds"
    assert failure.payload == {}
    assert failure.attempts == 0
