"""Least privilege, proven by running the chain: every call is allowed and every grant is used.

The scenarios run in the sandbox (moto, the template's rules, the local SageMaker engine) with a
recorder on every botocore client. Each recorded call is attributed to the function that made
it, or to the SageMaker execution role while the engine trains and hosts, then checked against
that role's policies as the SAM translator expands them from template.yaml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from sandbox.runner import Sandbox
from sandbox.stack import FunctionSpec
from tests.iam import CallRecorder, Fault, IamCall, PolicySet
from tests.support import digits_dataset

ROOT = Path(__file__).resolve().parents[2]
CHAIN = ("PrepareFunction", "StartTuningFunction", "DeployFunction", "EvaluateFunction")
FUNCTIONS = (*CHAIN, "RecordFailureFunction")
EXECUTION_ROLE = "SageMakerExecutionRole"
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"

# One transient failure per function after prepare, so each handler raises once and Lambda
# retries it. Powertools deletes the idempotency record of a raising handler.
HAPPY_PATH_FAULTS = (
    Fault("StartTuningFunction", "CreateHyperParameterTuningJob", "ThrottlingException", status=400),
    Fault("DeployFunction", "DescribeHyperParameterTuningJob", "ThrottlingException", status=400),
    Fault("EvaluateFunction", "ListTrainingJobsForHyperParameterTuningJob", "ThrottlingException", status=400),
)
# Train rows whose shard exceeds the 16 MiB multipart threshold of Storage.write_bytes.
MULTIPART_ROWS = (5600, 100, 100)


class RecordingSandbox(Sandbox):
    """The sandbox with each invocation, destination delivery and engine step attributed to a principal."""

    def __init__(self, recorder: CallRecorder, **options: Any) -> None:
        super().__init__(ROOT / "template.yaml", **options)
        self.recorder = recorder
        engine_advance = self.engine.advance

        def advance() -> str | None:
            with recorder.acting_as(EXECUTION_ROLE):
                return engine_advance()

        self.engine.advance = advance  # type: ignore[method-assign]

    # NOTE: these override private methods of sandbox.runner.Sandbox. A rename there breaks this test.
    def _invoke_async(self, spec: FunctionSpec, payload: Any) -> None:
        with self.recorder.acting_as(spec.logical_id):
            super()._invoke_async(spec, payload)

    def _dead_letter(self, spec: FunctionSpec, payload: Any, request_id: str, attempts: int,
                     error: BaseException) -> None:
        with self.recorder.acting_as(destination_principal(spec.logical_id)):
            super()._dead_letter(spec, payload, request_id, attempts, error)


def destination_principal(function: str) -> str:
    """The principal of Lambda's on-failure delivery, which uses the function's execution role."""
    return f"{function}:OnFailure"


@dataclass
class Recording:
    calls: list[IamCall]
    policies: dict[str, PolicySet]
    runs: dict[str, dict[str, Any]]
    status_documents: dict[str, dict[str, Any]]
    unmatched_faults: list[Fault]
    execution_role_arn: str
    dead_lettered: dict[str, int]

    def by(self, principal: str) -> list[IamCall]:
        return [call for call in self.calls if call.principal == principal]


def s3_client() -> Any:
    return boto3.client("s3", region_name="us-east-1")


def put_upload(sandbox: Sandbox, key: str, body: bytes) -> None:
    s3_client().put_object(Bucket=sandbox.stack.physical("IngestBucket").name, Key=key, Body=body)


def run_of(sandbox: Sandbox, key: str) -> dict[str, Any] | None:
    return next((item for item in sandbox.ledger_items() if item.get("source", {}).get("key") == key), None)


def keys_under(bucket: str, prefix: str) -> list[str]:
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def delete_objects(bucket: str, prefix: str) -> None:
    for key in keys_under(bucket, prefix):
        s3_client().delete_object(Bucket=bucket, Key=key)


def corrupt_objects(bucket: str, prefix: str) -> None:
    for key in keys_under(bucket, prefix):
        s3_client().put_object(Bucket=bucket, Key=key, Body=b"not a model archive")


def sabotage_when(sandbox: Sandbox, key: str, status: str, prefix: str, damage: Callable[[str, str], None]) -> Callable[[], None]:
    """Return an on_step callback that damages runs/<run_id>/<prefix> once, when the run reaches status."""
    done: list[bool] = []

    def check() -> None:
        run = run_of(sandbox, key)
        if not done and run and run["status"] == status:
            damage(sandbox.stack.physical("ArtifactsBucket").name, f"runs/{run['run_id']}/{prefix}")
            done.append(True)

    return check


def drain(sandbox: Sandbox) -> None:
    while sandbox.bus.get() is not None:
        pass


def deliver_first(sandbox: Sandbox) -> None:
    """Deliver the oldest event on the bus and drop every other event, including those it causes."""
    event = sandbox.bus.get()
    assert event is not None
    drain(sandbox)
    sandbox.deliver(event)
    drain(sandbox)


def run_scenarios(sandbox: RecordingSandbox) -> None:
    artifacts = sandbox.stack.physical("ArtifactsBucket").name

    # Happy path, every event delivered twice, one retried failure per function.
    sandbox.recorder.faults.extend(Fault(**vars(fault)) for fault in HAPPY_PATH_FAULTS)
    put_upload(sandbox, "uploads/good.pkl.gz", digits_dataset(rows=(300, 100, 100)))
    sandbox.run_until_idle()
    sandbox.deliver_twice = False

    # SageMaker rejects the tuning job (account quota), so the run fails and SNS notifies its owner.
    sandbox.recorder.faults.append(
        Fault("StartTuningFunction", "CreateHyperParameterTuningJob", "ResourceLimitExceeded", status=400))
    put_upload(sandbox, "uploads/tuning-rejected.pkl.gz", digits_dataset(rows=(60, 20, 20), seed=10))
    sandbox.run_until_idle()

    # A file that is not a dataset: the run fails with status.json and an SNS message.
    put_upload(sandbox, "uploads/not-a-dataset.pkl.gz", b"plainly not a dataset")
    sandbox.run_until_idle()

    # Tuning fails: the training data disappears before the first training wave.
    put_upload(sandbox, "uploads/tuning-fails.pkl.gz", digits_dataset(rows=(120, 40, 40), seed=11))
    sandbox.run_until_idle(on_step=sabotage_when(sandbox, "uploads/tuning-fails.pkl.gz", "TUNING", "data/",
                                                 delete_objects))

    # The endpoint fails: the model artifacts are damaged before it comes into service.
    put_upload(sandbox, "uploads/endpoint-fails.pkl.gz", digits_dataset(rows=(120, 40, 40), seed=12))
    sandbox.run_until_idle(on_step=sabotage_when(sandbox, "uploads/endpoint-fails.pkl.gz", "DEPLOYING", "models/",
                                                 corrupt_objects))

    # A large shard goes up as a multipart upload whose first part fails, so prepare aborts the
    # upload and raises, and Lambda retries it. Only prepare runs because its events are dropped.
    sandbox.recorder.faults.append(Fault("PrepareFunction", "UploadPart", "InternalError", status=500))
    put_upload(sandbox, "uploads/large.pkl.gz", digits_dataset(rows=MULTIPART_ROWS, seed=13))
    deliver_first(sandbox)

    # A manifest outside runs/ is rejected on every attempt and goes to the failure destination.
    s3_client().put_object(Bucket=artifacts, Key="stray/manifest.json", Body=b"{}")
    sandbox.run_until_idle()

    # Evaluate cannot read the run's data on any attempt, so RecordFailureFunction ends the run and
    # deletes its hosting. It fails once itself first, so Lambda retries it too.
    sandbox.recorder.faults.append(Fault("EvaluateFunction", "GetObject", "AccessDenied", status=403, times=3))
    sandbox.recorder.faults.append(Fault("RecordFailureFunction", "GetItem", "AccessDeniedException", status=400))
    put_upload(sandbox, "uploads/evaluate-crashes.pkl.gz", digits_dataset(rows=(120, 40, 40), seed=14))
    sandbox.run_until_idle()

    # Prepare crashes before it records the run, so RecordFailureFunction creates the FAILED run.
    sandbox.recorder.faults.append(Fault("PrepareFunction", "PutItem", "AccessDeniedException", status=400, times=3))
    put_upload(sandbox, "uploads/prepare-crashes.pkl.gz", digits_dataset(rows=(60, 20, 20), seed=15))
    sandbox.run_until_idle()


@pytest.fixture(scope="module")
def recording() -> Iterator[Recording]:
    recorder = CallRecorder(account_id="123456789012")
    with recorder.installed(), RecordingSandbox(recorder, deliver_twice=True) as sandbox:
        run_scenarios(sandbox)

        stack = sandbox.stack
        policies = {name: PolicySet.for_function(stack, name) for name in FUNCTIONS}
        policies[EXECUTION_ROLE] = PolicySet.for_role(stack, EXECUTION_ROLE)
        runs = {item["source"]["key"]: item for item in sandbox.ledger_items()}
        results = stack.physical("ResultsBucket").name
        documents = {key: json.loads(s3_client().get_object(
            Bucket=results, Key=f"runs/{run['run_id']}/status.json")["Body"].read()) for key, run in runs.items()}
        yield Recording(calls=list(recorder.calls), policies=policies, runs=runs, status_documents=documents,
                        unmatched_faults=[fault for fault in recorder.faults if fault.times > 0],
                        execution_role_arn=stack.physical(EXECUTION_ROLE).get_att("Arn"),
                        dead_lettered=dict(sandbox.stats.dead_lettered))


# ---- the scenarios did what they claim ----------------------------------------------------------


@pytest.mark.parametrize(("key", "status", "error_code"), [
    ("uploads/good.pkl.gz", "SUCCEEDED", None),
    ("uploads/tuning-rejected.pkl.gz", "FAILED", "TUNING_REJECTED"),
    ("uploads/not-a-dataset.pkl.gz", "FAILED", "DATASET_NOT_GZIP"),
    ("uploads/tuning-fails.pkl.gz", "FAILED", "TUNING_FAILED"),
    ("uploads/endpoint-fails.pkl.gz", "FAILED", "ENDPOINT_FAILED"),
    ("uploads/large.pkl.gz", "PREPARING", None),
    ("uploads/evaluate-crashes.pkl.gz", "FAILED", "FUNCTION_FAILED"),
    ("uploads/prepare-crashes.pkl.gz", "FAILED", "FUNCTION_FAILED"),
])
def test_scenario_outcome(recording, key, status, error_code):
    run = recording.runs[key]
    assert run["status"] == status
    assert run.get("error_code") == error_code
    assert recording.status_documents[key]["status"] == status


def test_scenario_faults_consumed(recording):
    assert recording.unmatched_faults == []


def test_scenario_dead_letter(recording):
    assert recording.dead_lettered == {"StartTuningFunction": 1, "EvaluateFunction": 1, "PrepareFunction": 1}


@pytest.mark.parametrize(("principal", "action"), [
    ("PrepareFunction", "sns:Publish"),
    ("PrepareFunction", "s3:AbortMultipartUpload"),
    ("StartTuningFunction", "sns:Publish"),
    ("DeployFunction", "sns:Publish"),
    ("EvaluateFunction", "sagemaker:DeleteEndpoint"),
    ("EvaluateFunction", "sagemaker:DeleteEndpointConfig"),
    ("EvaluateFunction", "sagemaker:DeleteModel"),
    ("EvaluateFunction", "sns:Publish"),
    ("RecordFailureFunction", "dynamodb:PutItem"),
    ("RecordFailureFunction", "sagemaker:DeleteEndpoint"),
    ("RecordFailureFunction", "sns:Publish"),
])
def test_scenario_reached(recording, principal, action):
    assert action in {call.action for call in recording.by(principal)}


# ---- least privilege ----------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_missing_grants(recording, function):
    missing = recording.policies[function].missing(recording.by(function))
    assert missing == [], f"{function} made calls its role does not allow:\n" + "\n".join(missing)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_unused_grants(recording, function):
    unused = recording.policies[function].unused(recording.by(function))
    assert unused == [], f"{function} has grants no scenario used:\n" + "\n".join(unused)


@pytest.mark.parametrize("function", CHAIN)
def test_failure_destination_allowed(recording, function):
    # Lambda puts the invocation record on the default bus with the function's role. The sandbox
    # hands it to its own bus without a boto3 call, so the authorization is checked as AWS makes it.
    bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    put = IamCall(principal=destination_principal(function), operation="PutEvents", action="events:PutEvents",
                  resource=bus)
    assert recording.policies[function].missing([put]) == []


def test_record_failure_destination_allowed(recording):
    # RecordFailureFunction's own failures go straight to the queue, by queue ARN.
    sends = [call for call in recording.by(destination_principal("RecordFailureFunction"))
             if call.action == "sqs:SendMessage"]
    assert recording.policies["RecordFailureFunction"].missing(sends) == []


def test_execution_role_missing_grants(recording):
    calls = recording.by(EXECUTION_ROLE)
    missing = recording.policies[EXECUTION_ROLE].missing(calls)
    assert calls, "the engine made no calls: the execution role was not exercised"
    assert missing == [], "training or hosting made calls the execution role does not allow:\n" + "\n".join(missing)


def test_execution_role_unused_s3_grants(recording):
    # The engine emulates S3 access only, so the role's CloudWatch Logs and metrics grants stay unchecked.
    unused = [finding for finding in recording.policies[EXECUTION_ROLE].unused(recording.by(EXECUTION_ROLE))
              if " s3:" in finding or ":s3:::" in finding]
    assert unused == [], "execution role S3 grants that training and hosting never used:\n" + "\n".join(unused)


def test_execution_role_bucket_scope(recording):
    policy = recording.policies[EXECUTION_ROLE]
    bucket = next(call.resource.split("/")[0] for call in recording.by(EXECUTION_ROLE) if call.action == "s3:GetObject")
    run = "runs/0123abcd"

    def allowed(action: str, key: str) -> bool:
        return policy.allows(IamCall(EXECUTION_ROLE, "probe", action, f"{bucket}/{key}"))

    assert allowed("s3:GetObject", f"{run}/data/train/part-00000.rec")
    assert allowed("s3:PutObject", f"{run}/models/job-1/output/model.tar.gz")
    assert not allowed("s3:GetObject", f"{run}/manifest.json")
    assert not allowed("s3:GetObject", "uploads/mnist.pkl.gz")
    assert not allowed("s3:PutObject", f"{run}/data/train/part-00000.rec")
    assert not allowed("s3:PutObject", f"{run}/manifest.json")
    assert not allowed("s3:DeleteObject", f"{run}/models/job-1/output/model.tar.gz")


def test_execution_role_list_scope(recording):
    policy = recording.policies[EXECUTION_ROLE]
    bucket = next(call.resource for call in recording.by(EXECUTION_ROLE) if call.action == "s3:ListBucket")

    def listable(prefix: str | None) -> bool:
        context = () if prefix is None else (("s3:prefix", prefix),)
        return policy.allows(IamCall(EXECUTION_ROLE, "probe", "s3:ListBucket", bucket, context))

    assert listable("runs/0123abcd/data/train/")
    assert not listable("uploads/")
    assert not listable(None)


@pytest.mark.parametrize("function", ["StartTuningFunction", "DeployFunction"])
def test_pass_role_scope(recording, function):
    policy = recording.policies[function]
    role = recording.execution_role_arn

    def passable(role_arn: str, service: str | None) -> bool:
        context = () if service is None else (("iam:PassedToService", service),)
        return policy.allows(IamCall(function, "probe", "iam:PassRole", role_arn, context))

    assert passable(role, SAGEMAKER_SERVICE)
    assert not passable(role, "lambda.amazonaws.com")
    assert not passable(role, None)
    assert not passable(role.replace("SageMakerExecutionRole", "OtherRole"), SAGEMAKER_SERVICE)


@pytest.mark.parametrize("function", ["PrepareFunction", "EvaluateFunction"])
def test_pass_role_absent(recording, function):
    probe = IamCall(function, "probe", "iam:PassRole", recording.execution_role_arn,
                    (("iam:PassedToService", SAGEMAKER_SERVICE),))
    assert not recording.policies[function].allows(probe)
