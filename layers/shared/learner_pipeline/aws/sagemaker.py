"""SageMaker control-plane and runtime calls, idempotent where a repeated event repeats them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from learner_pipeline.aws.clients import client, single_attempt_client

logger = Logger(child=True)

# Error codes of InvokeEndpoint worth another attempt (throttling, a model still loading, 5xx).
TRANSIENT_INVOKE_CODES = {"ThrottlingException", "ModelNotReadyException", "ServiceUnavailable",
                          "InternalFailure", "InternalDependencyException"}


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _already_exists(exc: ClientError) -> bool:
    message = exc.response.get("Error", {}).get("Message", "")
    return _error_code(exc) in ("ValidationException", "ResourceInUse") and (
        "already exist" in message or "Cannot create already existing" in message)


def _not_found(exc: ClientError) -> bool:
    message = exc.response.get("Error", {}).get("Message", "")
    return _error_code(exc) in ("ValidationException", "ResourceNotFound") and (
        "Could not find" in message or "does not exist" in message or "not found" in message.lower())


class SageMaker:
    def __init__(self, sagemaker: Any = None, runtime: Any = None) -> None:
        self._sagemaker = sagemaker if sagemaker is not None else client("sagemaker")
        self._runtime = runtime

    def create_once(self, operation: str, request: dict[str, Any]) -> bool:
        """Call a Create* operation; return False when the named resource already exists (a repeated event)."""
        try:
            getattr(self._sagemaker, operation)(**request)
        except ClientError as exc:
            if _already_exists(exc):
                logger.info("resource already exists", extra={"operation": operation})
                return False
            raise
        return True

    def describe_tuning_job(self, name: str) -> dict[str, Any]:
        return self._sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)

    def describe_training_job(self, name: str) -> dict[str, Any]:
        return self._sagemaker.describe_training_job(TrainingJobName=name)

    def list_trials(self, tuning_job_name: str) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        arguments = {"HyperParameterTuningJobName": tuning_job_name, "MaxResults": 100}
        while True:
            page = self._sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**arguments)
            summaries.extend(page.get("TrainingJobSummaries", []))
            if not page.get("NextToken"):
                return summaries
            arguments["NextToken"] = page["NextToken"]

    def delete_quietly(self, operation: str, **arguments: str) -> bool:
        """Call a Delete* operation; return False when the resource is already gone."""
        try:
            getattr(self._sagemaker, operation)(**arguments)
        except ClientError as exc:
            if _not_found(exc):
                logger.info("resource already deleted", extra={"operation": operation, **arguments})
                return False
            raise
        return True

    def invoker(self, endpoint_name: str, transient_error: type[Exception]) -> Callable[[bytes, str], bytes]:
        """Return a function performing one InvokeEndpoint; transient failures raise transient_error."""
        # predict_all retries each batch itself, so the client makes one attempt per call.
        runtime = self._runtime if self._runtime is not None else single_attempt_client("sagemaker-runtime")

        def invoke(body: bytes, content_type: str) -> bytes:
            try:
                response = runtime.invoke_endpoint(EndpointName=endpoint_name, ContentType=content_type,
                                                   Accept="application/json", Body=body)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if _error_code(exc) in TRANSIENT_INVOKE_CODES or status >= 500 or status == 429:
                    raise transient_error(f"{_error_code(exc)}: {exc}") from exc
                raise
            return response["Body"].read()

        return invoke
