"""Transient AWS faults (throttling, 5xx) are retried, and a run still happens exactly once."""

import json

import boto3
import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from learner_pipeline.aws import clients
from learner_pipeline.aws.sagemaker import SageMaker
from learner_pipeline.errors import EvaluationError
from learner_pipeline.inference import CSV, TransientInvokeError, predict_all
from tests.support import digits_dataset, physical, s3_event, upload


class FaultInjector:
    """Return an error for the first `count` calls of an operation, before moto sees them."""

    def __init__(self, client, operation: str, status: int, code: str, count: int) -> None:
        self.remaining = count
        self.injected = 0
        self.status = status
        self.code = code
        client.meta.events.register_first(f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}",
                                          self.respond)

    def respond(self, request, **kwargs):
        if self.remaining == 0:
            return None
        self.remaining -= 1
        self.injected += 1
        body = json.dumps({"__type": self.code, "message": "injected fault"}).encode()
        if "s3" in request.url:
            body = (f"<Error><Code>{self.code}</Code><Message>injected fault</Message></Error>").encode()
        return AWSResponse(request.url, self.status, {"x-amzn-ErrorType": self.code}, MockRawResponse(body))


def prepare_with_event(stack, invoke, event):
    uploaded = upload(stack, "uploads/mnist.pkl.gz", digits_dataset(rows=(60, 20, 20)))
    return invoke("PrepareFunction", s3_event(event("ingest_object_created.json"), **uploaded))


@pytest.mark.parametrize(("service", "operation", "status", "code"), [
    ("dynamodb", "PutItem", 400, "ThrottlingException"),
    ("dynamodb", "UpdateItem", 500, "InternalServerError"),
    ("s3", "PutObject", 503, "SlowDown"),
])
def test_transient_fault_retried(stack, invoke, event, service, operation, status, code):
    # Given the function's client fails the first two calls of an operation
    injector = FaultInjector(clients.client(service) if service == "s3" else clients.resource(service).meta.client,
                             operation, status, code, count=2)

    # When prepare runs
    result = prepare_with_event(stack, invoke, event)

    # Then botocore retried past the faults and the run was prepared once
    assert injector.injected == 2
    assert result["outcome"] == "prepared"
    table = boto3.resource("dynamodb").Table(physical(stack, "LedgerTable"))
    assert table.scan()["Count"] == 1


def test_throttled_tuning_creates_one_job(stack, invoke, event):
    run_id = prepare_with_event(stack, invoke, event)["run_id"]
    injector = FaultInjector(clients.client("sagemaker"), "CreateHyperParameterTuningJob", 400,
                             "ThrottlingException", count=2)
    bucket = physical(stack, "ArtifactsBucket")
    key = f"runs/{run_id}/manifest.json"
    head = boto3.client("s3").head_object(Bucket=bucket, Key=key)

    result = invoke("StartTuningFunction", s3_event(event("manifest_object_created.json"), bucket, key,
                                                    head["ContentLength"], head["ETag"].strip('"'), None))

    assert injector.injected == 2
    assert result["outcome"] == "tuning"
    jobs = boto3.client("sagemaker").list_hyper_parameter_tuning_jobs()["HyperParameterTuningJobSummaries"]
    assert len(jobs) == 1


def test_invoke_endpoint_attempts_bounded(stack):
    # Given an endpoint that responds to every call with 503
    runtime = clients.single_attempt_client("sagemaker-runtime")
    injector = FaultInjector(runtime, "InvokeEndpoint", 503, "ServiceUnavailable", count=100)
    invoke = SageMaker(sagemaker=object()).invoker("llp-unreachable", TransientInvokeError)

    # When one batch is predicted with five attempts. The body is CSV because moto's handler also
    # reads the injected requests, and it fails on bytes that are not UTF-8.
    with pytest.raises(EvaluationError) as caught:
        predict_all(np.zeros((3, 784), np.float32), invoke, content_type=CSV, max_attempts=5,
                    sleep=lambda seconds: None)

    # Then five requests were sent, not five times botocore's own retries
    assert injector.injected == 5
    assert "after 5 attempts" in caught.value.message
