"""The failure sample event and the `sam local invoke` environment file, checked against the stack."""

import json

import boto3

from tests.conftest import EVENTS
from tests.support import digits_dataset, physical, s3_event, upload


def point_at_stack(stack, sample: dict, payload: dict) -> dict:
    """Point the failure sample at this stack's prepare function and at a real upload's event."""
    arn = f"{stack.functions['PrepareFunction'].arn}:$LATEST"
    detail = {**sample["detail"], "requestPayload": payload,
              "requestContext": {**sample["detail"]["requestContext"], "functionArn": arn}}
    return {**sample, "resources": [sample["resources"][0], arn], "detail": detail}


def make_upload_event(stack, event) -> dict:
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset(rows=(60, 20, 20)))
    return s3_event(event("ingest_object_created.json"), **uploaded)


def ledger_item(stack, run_id: str) -> dict:
    table = boto3.resource("dynamodb").Table(physical(stack, "LedgerTable"))
    return table.get_item(Key={"run_id": run_id}, ConsistentRead=True)["Item"]


def test_failure_sample_matches_rules(stack, event):
    notification = point_at_stack(stack, event("invocation_failed.json"), event("ingest_object_created.json"))

    targets = {target.function.logical_id if target.function else "queue" for target in stack.targets_for(notification)}

    assert targets == {"RecordFailureFunction", "queue"}


def test_failure_sample_fails_run(stack, invoke, event):
    # Given an upload whose prepare exhausted its retries before it recorded the run
    payload = make_upload_event(stack, event)
    notification = point_at_stack(stack, event("invocation_failed.json"), payload)

    # When the failure record reaches RecordFailureFunction
    result = invoke("RecordFailureFunction", notification)

    # Then the run exists, FAILED, naming the function and the error
    item = ledger_item(stack, result["run_id"])
    assert result["outcome"] == "failed"
    assert item["status"] == "FAILED"
    assert item["error_code"] == "FUNCTION_FAILED"
    assert item["failed_function"] == stack.functions["PrepareFunction"].name
    assert "SlowDown" in item["error_message"]
    assert "failed after 3 attempts" in item["error_message"]


def test_failed_run_writes_status(stack, invoke, event):
    payload = make_upload_event(stack, event)
    result = invoke("RecordFailureFunction", point_at_stack(stack, event("invocation_failed.json"), payload))

    body = boto3.client("s3").get_object(Bucket=physical(stack, "ResultsBucket"),
                                         Key=f"runs/{result['run_id']}/status.json")["Body"].read()
    status = json.loads(body)

    assert status["status"] == "FAILED"
    assert status["failed_function"] == stack.functions["PrepareFunction"].name


def test_resent_payload_ignored(stack, invoke, event):
    # Given a run that RecordFailureFunction ended FAILED
    payload = make_upload_event(stack, event)
    failed = invoke("RecordFailureFunction", point_at_stack(stack, event("invocation_failed.json"), payload))

    # When an operator sends the dead-lettered requestPayload to prepare again
    again = invoke("PrepareFunction", payload)

    # Then prepare leaves the run FAILED: only a new upload starts a new run
    assert again["run_id"] == failed["run_id"]
    assert again["outcome"] == "duplicate"
    assert ledger_item(stack, failed["run_id"])["status"] == "FAILED"


def test_env_file_names_functions(stack):
    environment = json.loads((EVENTS / "env.json").read_text())

    assert set(environment) == set(stack.functions)


def test_env_file_matches_template(stack):
    environment = json.loads((EVENTS / "env.json").read_text())

    for logical_id, spec in stack.functions.items():
        assert set(environment[logical_id]) == set(spec.environment), logical_id
