"""Run the whole stack on one machine: moto, the template's resources and rules, the real handlers.

``Sandbox`` starts moto, creates the stack from the template, loads each function in
isolation and delivers events the way EventBridge and Lambda asynchronous invocation do. Every
event goes to the target of every matching rule. A handler that raises is invoked again up to
the function's MaximumRetryAttempts (2 unless the template sets another value), and then the
event goes to the function's on-failure destination or dead-letter queue. ``run_dataset``
drives one upload to its end and collects the results.
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import boto3
from moto import mock_aws

from sandbox.bus import EventBus
from sandbox.engine import SageMakerEngine
from sandbox.handlers import LoadedFunction, load_function
from sandbox.stack import FunctionSpec, Stack, TargetSpec

logger = logging.getLogger(__name__)

# Powertools warns when an idempotent repeat returns the stored result without adding a metric,
# which --deliver-twice does on purpose.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

RUN_STAGES = ("PREPARING", "TUNING", "DEPLOYING", "EVALUATING", "SUCCEEDED", "FAILED")
_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
}

Progress = Callable[[str], None]


@dataclass
class DeliveryStats:
    """Delivery counts per function logical id, and the errors handlers raised."""

    events_delivered: Counter[str] = field(default_factory=Counter)
    invocations: Counter[str] = field(default_factory=Counter)
    failed_invocations: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    unmatched_events: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "events_delivered": dict(self.events_delivered),
            "invocations": dict(self.invocations),
            "failed_invocations": dict(self.failed_invocations),
            "dead_lettered": dict(self.dead_lettered),
            "unmatched_events": self.unmatched_events,
            "errors": self.errors,
        }


class Sandbox:
    """The stack running in moto with the local SageMaker engine. Use it as a context manager."""

    def __init__(
        self,
        template: str | Path,
        *,
        parameters: dict[str, Any] | None = None,
        stack_name: str = "sandbox",
        deliver_twice: bool = False,
        seed: int = 0,
        function_output: TextIO | None = None,
        max_steps: int = 10_000,
    ) -> None:
        self.stack = Stack.from_template(template, parameters, stack_name)
        self.deliver_twice = deliver_twice
        self.bus = EventBus()
        self.engine = SageMakerEngine(self.bus.put, seed=seed)
        self.stats = DeliveryStats()
        self._function_output = function_output
        self._max_steps = max_steps
        self._functions: dict[str, LoadedFunction] = {}
        self._exit_stack = ExitStack()

    def __enter__(self) -> Sandbox:
        region = self.stack.context.region
        self._exit_stack.enter_context(_environment({**_FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": region}))
        self._exit_stack.enter_context(mock_aws())
        self.stack.create_resources()
        self._exit_stack.enter_context(self.engine)
        self._exit_stack.enter_context(self.bus.capture_s3_events())
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._exit_stack.close()

    # Driving the chain

    def upload(self, path: Path, bucket: str, key: str) -> None:
        boto3.client("s3", region_name=self.stack.context.region).upload_file(str(path), bucket, key)

    def run_until_idle(self, on_step: Callable[[], None] | None = None) -> int:
        """Deliver events and run engine work until nothing is left; return the number of steps."""
        steps = 0
        while steps < self._max_steps:
            event = self.bus.get()
            if event is not None:
                self.deliver(event)
            elif self.engine.advance() is None:
                return steps
            steps += 1
            if on_step is not None:
                on_step()
        raise RuntimeError(f"the sandbox did not become idle after {self._max_steps} steps: an event loop?")

    def deliver(self, event: dict[str, Any]) -> None:
        """Deliver ``event`` to every matching rule target, twice with ``deliver_twice``."""
        targets = self.stack.targets_for(event)
        if not targets:
            self.stats.unmatched_events += 1
            return
        for _copy in range(2 if self.deliver_twice else 1):
            for target in targets:
                if target.function is None:
                    if target.arn.split(":")[2] == "sqs":
                        _send_to_destination(target.arn, json.dumps(_target_payload(target, event), default=str),
                                             {}, self.stack.context.region)
                    else:
                        logger.warning("rule target %s is neither a function of the stack nor a queue; "
                                       "event not delivered", target.arn)
                    continue
                self._invoke_async(target.function, _target_payload(target, event))

    def _invoke_async(self, spec: FunctionSpec, payload: Any) -> None:
        """Invoke like Lambda's asynchronous invocation: retries, then the failure destination."""
        self.stats.events_delivered[spec.logical_id] += 1
        request_id = str(uuid.uuid4())
        attempts = 1 + spec.maximum_retry_attempts
        error: BaseException | None = None

        # NOTE: the function's Timeout is not enforced: the context reports the remaining time,
        # but a handler that runs longer is not stopped as Lambda would stop it.
        for attempt in range(1, attempts + 1):
            self.stats.invocations[spec.logical_id] += 1
            try:
                function = self._function(spec)
                function(payload, function.new_context(request_id))
                return
            except Exception as exc:  # noqa: BLE001 - Lambda catches every handler error the same way
                error = exc
                self.stats.failed_invocations[spec.logical_id] += 1
                logger.warning(
                    "function %s failed (attempt %d of %d, request %s): %s",
                    spec.logical_id, attempt, attempts, request_id, _error_summary(exc),
                )
                self._record_error(spec, request_id, exc)

        assert error is not None
        self._dead_letter(spec, payload, request_id, attempts, error)

    def _function(self, spec: FunctionSpec) -> LoadedFunction:
        # A failed import is retried on the next invocation, as a failed Lambda init is.
        if spec.logical_id not in self._functions:
            self._functions[spec.logical_id] = load_function(
                spec, region=self.stack.context.region, isolate_layers=True, output=self._function_output
            )
        return self._functions[spec.logical_id]

    def _record_error(self, spec: FunctionSpec, request_id: str, error: BaseException) -> None:
        self.stats.errors.append(
            {
                "function": spec.logical_id,
                "request_id": request_id,
                "error": _error_summary(error),
                "traceback": "".join(traceback.format_exception(error))[-4000:],
            }
        )

    def _dead_letter(self, spec: FunctionSpec, payload: Any, request_id: str, attempts: int, error: BaseException) -> None:
        self.stats.dead_lettered[spec.logical_id] += 1
        region = self.stack.context.region
        error_type = type(error).__name__

        if spec.on_failure_destination_arn:
            # The invocation record Lambda sends to an on-failure destination.
            record = {
                "version": "1.0",
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "requestContext": {
                    "requestId": request_id,
                    "functionArn": f"{spec.arn}:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": attempts,
                },
                "requestPayload": payload,
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "responsePayload": {"errorMessage": str(error), "errorType": error_type},
            }
            if spec.on_failure_destination_arn.split(":")[2] == "events":
                # Lambda puts the record on the bus as a "Lambda Function Invocation Result - Failure" event.
                self.bus.put({
                    "version": "0", "id": str(uuid.uuid4()), "source": "lambda",
                    "detail-type": "Lambda Function Invocation Result - Failure",
                    "account": self.stack.context.account_id, "region": region,
                    "time": record["timestamp"], "resources": [f"{spec.arn}:$LATEST"], "detail": record,
                })
            else:
                _send_to_destination(spec.on_failure_destination_arn, json.dumps(record, default=str), {}, region)
        elif spec.dead_letter_target_arn:
            attributes = {
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": str(error)[:1000] or error_type},
            }
            _send_to_destination(spec.dead_letter_target_arn, json.dumps(payload, default=str), attributes, region)
        else:
            logger.error("function %s exhausted its retries and has no failure destination: event dropped", spec.logical_id)

    # Reading results

    def ledger_items(self) -> list[dict[str, Any]]:
        """Return every item of the run ledger table."""
        table = boto3.resource("dynamodb", region_name=self.stack.context.region).Table(self.ledger_table_name())
        items: list[dict[str, Any]] = []
        arguments: dict[str, Any] = {}
        while True:
            page = table.scan(**arguments)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def ledger_table_name(self) -> str:
        """Return the table keyed by run_id (LedgerTable in the project template)."""
        if "LedgerTable" in self.stack.resources:
            return self.stack.physical("LedgerTable").name
        for logical_id in self.stack.resources_of_type("AWS::DynamoDB::Table"):
            key_schema = self.stack.properties(logical_id).get("KeySchema", [])
            if [key["AttributeName"] for key in key_schema] == ["run_id"]:
                return self.stack.physical(logical_id).name
        raise LookupError("the template has no DynamoDB table keyed by run_id to read run status from")

    def download_prefix(self, bucket: str, prefix: str, destination: Path) -> list[Path]:
        """Copy every object under ``prefix`` to ``destination``, keeping relative paths."""
        s3 = boto3.client("s3", region_name=self.stack.context.region)
        written = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :].lstrip("/")
                if not relative or ".." in Path(relative).parts:
                    continue
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
                written.append(target)
        return written

    def summary(self) -> dict[str, Any]:
        engine = self.engine.summary()
        return {
            "tuning_jobs_created": engine["tuning_jobs_created"],
            "training_jobs_created": engine["training_jobs_created"],
            "models_created": engine["models_created"],
            "endpoint_configs_created": engine["endpoint_configs_created"],
            "endpoints_created": engine["endpoints_created"],
            "endpoints_deleted": engine["endpoints_deleted"],
            "endpoints_alive_at_end": engine["endpoints_alive"],
            "invoke_endpoint_calls": engine["invoke_endpoint_calls"],
            "invoke_endpoint_request_bytes": engine["invoke_endpoint_request_bytes"],
            "invoke_endpoint_errors": engine["invoke_endpoint_errors"],
            "events_published": self.bus.published,
            "deliver_twice": self.deliver_twice,
            **self.stats.to_dict(),
        }


@dataclass
class RunResult:
    """The outcome of one sandbox run."""

    run_id: str | None
    status: str
    error_code: str | None
    error_message: str | None
    results_dir: Path | None
    files: list[Path]
    summary: dict[str, Any]
    seconds: float


def run_dataset(
    dataset: Path,
    results_root: Path,
    *,
    template: Path,
    parameters: dict[str, Any] | None = None,
    deliver_twice: bool = False,
    ingest_key: str | None = None,
    progress: Progress | None = None,
    function_output: TextIO | None = None,
) -> RunResult:
    """Upload ``dataset`` to the ingest bucket, run the chain to its end and collect the results.

    Results go to ``results_root/<run_id>/``, with ``sandbox-summary.json`` beside the files
    the pipeline wrote under ``runs/<run_id>/`` in the results bucket.
    """
    report = progress or (lambda line: None)
    started = time.monotonic()
    key = ingest_key or dataset.name

    with Sandbox(template, parameters=parameters, deliver_twice=deliver_twice, function_output=function_output) as sandbox:
        ingest_bucket = sandbox.stack.physical("IngestBucket").name
        results_bucket = sandbox.stack.physical("ResultsBucket").name
        report(f"{_elapsed(started)}  stack {sandbox.stack.context.stack_name} created from {template.name}")

        sandbox.upload(dataset, ingest_bucket, key)
        report(f"{_elapsed(started)}  uploaded {dataset.name} to s3://{ingest_bucket}/{key}")

        watcher = _StatusWatcher(sandbox, report, started)
        sandbox.run_until_idle(on_step=watcher.check)
        watcher.check()

        runs = sandbox.ledger_items()
        summary = sandbox.summary()
        if not runs:
            reason = summary["errors"][-1]["error"] if summary["errors"] else "no function created a run"
            return RunResult(None, "FAILED", "NO_RUN", reason, None, [], summary, time.monotonic() - started)

        run = runs[0]
        run_id = str(run["run_id"])
        destination = results_root / run_id
        destination.mkdir(parents=True, exist_ok=True)
        files = sandbox.download_prefix(results_bucket, f"runs/{run_id}/", destination)

        summary_path = destination / "sandbox-summary.json"
        summary["run_id"] = run_id
        summary["runs_in_ledger"] = len(runs)
        summary["status"] = run.get("status")
        summary["seconds"] = round(time.monotonic() - started, 3)
        summary_path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        files.append(summary_path)

        return RunResult(
            run_id=run_id,
            status=str(run.get("status", "UNKNOWN")),
            error_code=run.get("error_code"),
            error_message=run.get("error_message"),
            results_dir=destination,
            files=files,
            summary=summary,
            seconds=time.monotonic() - started,
        )


class _StatusWatcher:
    """Report each stage every run in the ledger enters, with the elapsed time.

    The ledger stamps ``<status>_at`` (``evaluating_at``, ...) when a run enters a status, so a
    stage that begins and ends within one handler invocation is still reported.
    """

    def __init__(self, sandbox: Sandbox, report: Progress, started: float) -> None:
        self._sandbox = sandbox
        self._report = report
        self._started = started
        self._reported: set[tuple[str, str]] = set()

    def check(self) -> None:
        for item in self._sandbox.ledger_items():
            run_id = str(item["run_id"])
            stages = [status for status in RUN_STAGES if f"{status.lower()}_at" in item]
            if str(item.get("status")) not in stages:
                stages.append(str(item.get("status")))
            for status in stages:
                if (run_id, status) not in self._reported:
                    self._reported.add((run_id, status))
                    self._report(f"{_elapsed(self._started)}  run {run_id} {status}")


def _target_payload(target: TargetSpec, event: dict[str, Any]) -> Any:
    """Apply a target's Input or InputPath, as EventBridge does before invoking it."""
    if target.input is not None:
        return json.loads(target.input)
    if target.input_path:
        value: Any = event
        for part in target.input_path.removeprefix("$").strip(".").split("."):
            if part:
                value = value.get(part) if isinstance(value, dict) else None
        return value
    return event


def _send_to_destination(arn: str, body: str, attributes: dict[str, Any], region: str) -> None:
    service = arn.split(":")[2]
    if service == "sqs":
        sqs = boto3.client("sqs", region_name=region)
        queue_url = sqs.get_queue_url(QueueName=arn.split(":")[-1], QueueOwnerAWSAccountId=arn.split(":")[4])["QueueUrl"]
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)
    elif service == "sns":
        boto3.client("sns", region_name=region).publish(TopicArn=arn, Message=body)
    else:
        logger.error("failure destination %s is neither SQS nor SNS; the sandbox does not deliver to it", arn)


def _error_summary(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _elapsed(started: float) -> str:
    return f"{time.monotonic() - started:7.1f}s"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
