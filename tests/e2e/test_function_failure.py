"""A function that keeps failing: Lambda's retries, then the run ends FAILED and nothing is left running."""

import boto3
import pytest

from sandbox.runner import Sandbox
from tests.e2e.conftest import ROOT

pytestmark = pytest.mark.e2e


def test_evaluate_crash_fails_run(mnist_sample):
    with Sandbox(ROOT / "template.yaml") as sandbox:
        ingest = sandbox.stack.physical("IngestBucket").name
        artifacts = sandbox.stack.physical("ArtifactsBucket").name
        sandbox.upload(mnist_sample, ingest, "uploads/mnist.pkl.gz")
        s3 = boto3.client("s3", region_name=sandbox.stack.context.region)

        def lose_test_split() -> None:
            # Given the test split disappears once the endpoint is being created, so evaluate crashes
            for run in sandbox.ledger_items():
                if run["status"] == "DEPLOYING":
                    s3.delete_object(Bucket=artifacts, Key=f"runs/{run['run_id']}/data/test/features.npy")

        sandbox.run_until_idle(on_step=lose_test_split)

        (run,) = sandbox.ledger_items()
        summary = sandbox.summary()
        queue_url = boto3.client("sqs", region_name=sandbox.stack.context.region).get_queue_url(
            QueueName=sandbox.stack.physical("DeadLetterQueue").name)["QueueUrl"]
        kept = boto3.client("sqs", region_name=sandbox.stack.context.region).receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])

    # Then evaluate was tried three times, the run FAILED with the reason, and the endpoint is gone
    assert summary["invocations"]["EvaluateFunction"] == 3
    assert run["status"] == "FAILED"
    assert run["error_code"] == "FUNCTION_FAILED"
    assert "NoSuchKey" in run["error_message"] or "does not exist" in run["error_message"]
    assert summary["endpoints_alive_at_end"] == []
    # And the invocation record is kept in the dead-letter queue for operators
    assert len(kept) == 1
