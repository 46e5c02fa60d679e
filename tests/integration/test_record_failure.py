"""A pipeline function that exhausted its retries: its run ends FAILED and its hosting is deleted."""

import boto3

from tests.integration.test_deploy_evaluate import SAMPLE_NAME, engine, renamed, tuned_run  # noqa: F401
from tests.support import digits_dataset, physical, s3_event, upload


def failure_event(stack, function_logical_id: str, payload: dict, message: str = "boom") -> dict:
    """The event EventBridge delivers for a Lambda on-failure destination record."""
    arn = stack.functions[function_logical_id].arn
    record = {
        "version": "1.0", "timestamp": "2026-12-04T10:30:00.000Z",
        "requestContext": {"requestId": "c0ffee00-0000-4000-8000-000000000001", "functionArn": f"{arn}:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": message, "errorType": "RuntimeError"},
    }
    return {"version": "0", "id": "f00d0000-0000-4000-8000-000000000001", "source": "lambda",
            "detail-type": "Lambda Function Invocation Result - Failure", "account": "123456789012",
            "region": "us-east-1", "time": "2026-12-04T10:30:00Z", "resources": [f"{arn}:$LATEST"],
            "detail": record}


def ledger_item(stack, run_id):
    return boto3.resource("dynamodb").Table(physical(stack, "LedgerTable")).get_item(Key={"run_id": run_id}).get("Item")


def test_failure_event_matches_rule(stack, event):
    notification = failure_event(stack, "PrepareFunction", event("ingest_object_created.json"))
    targets = {target.function.logical_id if target.function else "queue" for target in stack.targets_for(notification)}
    assert targets == {"RecordFailureFunction", "queue"}


def test_crashed_prepare_gets_verdict(stack, invoke, event):
    # Given an upload whose prepare crashed before it recorded the run
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset(rows=(60, 20, 20)))
    notification = s3_event(event("ingest_object_created.json"), **uploaded)

    result = invoke("RecordFailureFunction", failure_event(stack, "PrepareFunction", notification, "out of memory"))

    # Then the run exists, FAILED, with the function's error and what to do
    item = ledger_item(stack, result["run_id"])
    assert item["status"] == "FAILED"
    assert item["error_code"] == "FUNCTION_FAILED"
    assert "out of memory" in item["error_message"]
    assert item["source"]["key"] == "uploads/mnist.pkl.gz"


def test_crashed_evaluate_cleans_up(stack, invoke, event, engine):  # noqa: F811
    run_id = tuned_run(stack, invoke, event, engine)
    invoke("DeployFunction", renamed(event("tuning_completed.json"), SAMPLE_NAME, f"llp-{run_id}"))
    engine.run_until_idle()
    in_service = renamed(event("endpoint_in_service.json"), SAMPLE_NAME, f"llp-{run_id}")

    result = invoke("RecordFailureFunction", failure_event(stack, "EvaluateFunction", in_service))

    assert result["run_id"] == run_id
    assert ledger_item(stack, run_id)["status"] == "FAILED"
    sagemaker = boto3.client("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_models()["Models"] == []


def test_unknown_event_ignored(stack, invoke):
    result = invoke("RecordFailureFunction", failure_event(stack, "DeployFunction", {"source": "elsewhere"}))
    assert result["outcome"] == "ignored"
    assert result["run_id"] is None
