"""The end of a run: status.json in the results bucket and a message on the runs topic."""

from __future__ import annotations

import json
from typing import Any

from learner_pipeline.aws.clients import client
from learner_pipeline.aws.storage import Storage
from learner_pipeline.runs import RunLayout


def publish_outcome(run: dict[str, Any], *, results_bucket: str, topic_arn: str, storage: Storage | None = None,
                    sns: Any = None) -> None:
    """Write the run's status.json and publish its outcome. Both are safe to repeat."""
    storage = storage or Storage()
    storage.write_json(results_bucket, RunLayout(run["run_id"]).result_key("status.json"), run)
    message = {key: run.get(key) for key in ("run_id", "status", "error_code", "error_message", "source")}
    message["results"] = f"s3://{results_bucket}/{RunLayout(run['run_id']).root}"
    subject = f"Linear Learner run {run['run_id']} {run['status']}"
    (sns or client("sns")).publish(TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps(message, default=str),
                                   MessageAttributes={"status": {"DataType": "String", "StringValue": run["status"]}})


def write_status(run: dict[str, Any], *, results_bucket: str, storage: Storage | None = None) -> None:
    """Write the readable copy of the run's ledger item while the run is still going."""
    (storage or Storage()).write_json(results_bucket, RunLayout(run["run_id"]).result_key("status.json"), run)
