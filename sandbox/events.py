"""Builders of the EventBridge events S3 and SageMaker send, in the shapes AWS documents.

Sources: "EventBridge event message structure" in the Amazon S3 user guide, and "Events that
Amazon SageMaker AI sends to Amazon EventBridge" in the SageMaker developer guide. Envelope
times are ISO 8601 strings; SageMaker detail times are epoch milliseconds. S3 keys are sent
as stored, not URL-encoded, because EventBridge (unlike S3 event notifications) does not
encode them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

S3_SOURCE = "aws.s3"
SAGEMAKER_SOURCE = "aws.sagemaker"
OBJECT_CREATED = "Object Created"
TUNING_JOB_STATE_CHANGE = "SageMaker HyperParameter Tuning Job State Change"
TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"

# DescribeEndpoint spells statuses in CamelCase; the endpoint event spells them in upper snake case.
ENDPOINT_EVENT_STATUS = {
    "OutOfService": "OUT_OF_SERVICE",
    "Creating": "CREATING",
    "Updating": "UPDATING",
    "SystemUpdating": "SYSTEM_UPDATING",
    "RollingBack": "ROLLING_BACK",
    "InService": "IN_SERVICE",
    "Deleting": "DELETING",
    "Failed": "FAILED",
    "UpdateRollbackFailed": "UPDATE_ROLLBACK_FAILED",
}

# The reason field of "Object Created" per API that created the object.
S3_CREATED_REASONS = ("PutObject", "POST Object", "CopyObject", "CompleteMultipartUpload")


def envelope(
    *,
    source: str,
    detail_type: str,
    detail: Mapping[str, Any],
    resources: Sequence[str],
    region: str,
    account_id: str,
    time: datetime | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """Wrap ``detail`` in the EventBridge envelope every AWS service event carries."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account_id,
        "time": (time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }


def s3_object_created(
    *,
    bucket: str,
    key: str,
    size: int,
    etag: str,
    sequencer: str,
    region: str,
    account_id: str,
    version_id: str | None = None,
    reason: str = "PutObject",
    requester: str | None = None,
    source_ip_address: str = "127.0.0.1",
    request_id: str | None = None,
    time: datetime | None = None,
) -> dict[str, Any]:
    """Build the "Object Created" event of a bucket with EventBridge notifications enabled.

    ``version-id`` is present only for versioned buckets, as S3 sends it. ``etag`` is given
    without the quotes S3 puts around it in API responses.
    """
    if reason not in S3_CREATED_REASONS:
        raise ValueError(f"invalid Object Created reason {reason!r}: expected one of {S3_CREATED_REASONS}")

    s3_object: dict[str, Any] = {"key": key, "size": int(size), "etag": etag.strip('"')}
    if version_id and version_id != "null":
        s3_object["version-id"] = version_id
    s3_object["sequencer"] = sequencer

    detail = {
        "version": "0",
        "bucket": {"name": bucket},
        "object": s3_object,
        "request-id": request_id or uuid.uuid4().hex[:16].upper(),
        "requester": requester or account_id,
        "source-ip-address": source_ip_address,
        "reason": reason,
    }
    return envelope(
        source=S3_SOURCE,
        detail_type=OBJECT_CREATED,
        detail=detail,
        resources=[f"arn:{_partition(region)}:s3:::{bucket}"],
        region=region,
        account_id=account_id,
        time=time,
    )


def tuning_job_state_change(
    *,
    name: str,
    arn: str,
    status: str,
    config: Mapping[str, Any],
    training_job_definition: Mapping[str, Any] | None,
    training_job_status_counters: Mapping[str, int],
    objective_status_counters: Mapping[str, int],
    creation_time: datetime,
    last_modified_time: datetime,
    region: str,
    account_id: str,
    tags: Mapping[str, str] | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """Build "SageMaker HyperParameter Tuning Job State Change".

    The event carries no BestTrainingJob: a consumer calls DescribeHyperParameterTuningJob.
    """
    detail: dict[str, Any] = {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobArn": arn,
        "HyperParameterTuningJobStatus": status,
        "HyperParameterTuningJobConfig": dict(config),
    }
    if training_job_definition is not None:
        detail["TrainingJobDefinition"] = dict(training_job_definition)
    detail.update(
        {
            "TrainingJobStatusCounters": dict(training_job_status_counters),
            "ObjectiveStatusCounters": dict(objective_status_counters),
            "CreationTime": epoch_millis(creation_time),
            "LastModifiedTime": epoch_millis(last_modified_time),
            "Tags": dict(tags or {}),
        }
    )
    if failure_reason:
        detail["FailureReason"] = failure_reason
    return envelope(
        source=SAGEMAKER_SOURCE,
        detail_type=TUNING_JOB_STATE_CHANGE,
        detail=detail,
        resources=[arn],
        region=region,
        account_id=account_id,
    )


def training_job_state_change(
    *,
    description: Mapping[str, Any],
    region: str,
    account_id: str,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Build "SageMaker Training Job State Change" from a DescribeTrainingJob response.

    The detail repeats the job's description with times in epoch milliseconds, and carries
    FailureReason when TrainingJobStatus is Failed.
    """
    detail: dict[str, Any] = {}
    for field, value in description.items():
        if field == "ResponseMetadata" or value is None:
            continue
        detail[field] = _millis_everywhere(value)
    detail["Tags"] = dict(tags or {})
    return envelope(
        source=SAGEMAKER_SOURCE,
        detail_type=TRAINING_JOB_STATE_CHANGE,
        detail=detail,
        resources=[description["TrainingJobArn"]],
        region=region,
        account_id=account_id,
    )


def endpoint_state_change(
    *,
    name: str,
    arn: str,
    config_name: str,
    status: str,
    production_variants: Sequence[Mapping[str, Any]],
    creation_time: datetime,
    last_modified_time: datetime,
    region: str,
    account_id: str,
    tags: Mapping[str, str] | None = None,
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """Build "SageMaker Endpoint State Change".

    ``status`` may be given as DescribeEndpoint spells it (InService) or as the event does
    (IN_SERVICE); the event always carries the upper snake case form.
    """
    event_status = ENDPOINT_EVENT_STATUS.get(status, status)
    if event_status not in ENDPOINT_EVENT_STATUS.values():
        raise ValueError(f"invalid endpoint status {status!r}: expected one of {sorted(ENDPOINT_EVENT_STATUS)}")

    detail: dict[str, Any] = {
        "EndpointName": name,
        "EndpointArn": arn,
        "EndpointConfigName": config_name,
        "EndpointStatus": event_status,
        "ProductionVariants": [dict(variant) for variant in production_variants],
        "CreationTime": epoch_millis(creation_time),
        "LastModifiedTime": epoch_millis(last_modified_time),
        "Tags": dict(tags or {}),
    }
    if failure_reason:
        detail["FailureReason"] = failure_reason
    return envelope(
        source=SAGEMAKER_SOURCE,
        detail_type=ENDPOINT_STATE_CHANGE,
        detail=detail,
        resources=[arn],
        region=region,
        account_id=account_id,
    )


def epoch_millis(moment: datetime) -> int:
    """Return ``moment`` in epoch milliseconds; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def tags_map(tags: Sequence[Mapping[str, str]] | None) -> dict[str, str]:
    """Convert an API tag list ([{"Key": ..., "Value": ...}]) to the map events carry."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or []}


def _millis_everywhere(value: Any) -> Any:
    if isinstance(value, datetime):
        return epoch_millis(value)
    if isinstance(value, Mapping):
        return {key: _millis_everywhere(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_millis_everywhere(item) for item in value]
    return value


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"
