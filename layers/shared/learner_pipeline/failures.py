"""The run a failed Lambda invocation belongs to, read from the record Lambda sends to its on-failure destination."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from learner_pipeline.runs import run_id_for, run_id_from_manifest_key, run_id_from_name


@dataclass(frozen=True)
class FailedInvocation:
    function_arn: str
    attempts: int
    error_type: str
    error_message: str
    payload: dict[str, Any]

    @property
    def function_name(self) -> str:
        """The function's name, without the ARN prefix and the version qualifier."""
        name = self.function_arn.split(":function:", 1)[-1]
        return name.split(":", 1)[0]


def parse_failure(record: dict[str, Any]) -> FailedInvocation:
    """Read an asynchronous invocation record ("Lambda Function Invocation Result - Failure" detail)."""
    context = record.get("requestContext") or {}
    response = record.get("responsePayload") or {}
    if not isinstance(response, dict):
        response = {"errorMessage": str(response)}
    payload = record.get("requestPayload")
    return FailedInvocation(
        function_arn=str(context.get("functionArn", "")),
        attempts=int(context.get("approximateInvokeCount") or 0),
        error_type=str(response.get("errorType") or "Unknown"),
        error_message=str(response.get("errorMessage") or "no error message"),
        payload=payload if isinstance(payload, dict) else {},
    )


@dataclass(frozen=True)
class RunReference:
    """The run a failed event was about: candidate ids, and the upload it came from if it was one."""

    run_ids: tuple[str, ...]
    upload: dict[str, Any] | None = None
    hosting_created: bool = False


def run_reference(payload: dict[str, Any], name_prefix: str, ingest_bucket: str | None = None) -> RunReference:
    """Find the run an event of the chain refers to; an event of no run gives no candidates."""
    detail = payload.get("detail") or {}
    if payload.get("source") == "aws.s3":
        bucket = (detail.get("bucket") or {}).get("name", "")
        obj = detail.get("object") or {}
        key = obj.get("key", "")
        manifest_run = run_id_from_manifest_key(key)
        if manifest_run:
            return RunReference((manifest_run,))
        if ingest_bucket is not None and bucket != ingest_bucket:
            return RunReference(())
        version_id, etag = obj.get("version-id"), obj.get("etag")
        # Prepare derives the run from the key it found: as sent, or URL-decoded.
        keys = dict.fromkeys((key, unquote_plus(key)))
        upload = {"bucket": bucket, "key": key, "version_id": version_id, "etag": etag, "size": obj.get("size")}
        return RunReference(tuple(run_id_for(bucket, candidate, version_id, etag) for candidate in keys), upload)
    if payload.get("source") == "aws.sagemaker":
        name = detail.get("HyperParameterTuningJobName") or detail.get("EndpointName") or ""
        run_id = run_id_from_name(name_prefix, name)
        # Deploy may have created a model, an endpoint config or an endpoint before it failed.
        return RunReference((run_id,) if run_id else (), hosting_created=bool(run_id))
    return RunReference(())
