"""Typed configuration of each function, read once from the environment the template sets."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from learner_pipeline.errors import InvalidRequestError

MIB = 1024 * 1024

# The template parameters behind the variables a user sets through them, so a configuration error
# names what to change in `sam deploy --parameter-overrides` rather than only the variable.
TEMPLATE_PARAMETERS = {
    "POSITIVE_LABEL": "PositiveLabel",
    "MAX_UPLOAD_MIB": "MaxUploadMiB",
    "MAX_DECOMPRESSED_MIB": "MaxDecompressedMiB",
    "SHARD_MIB": "ShardMiB",
    "TRAINING_INSTANCE_COUNT": "TrainingInstanceCount",
    "TRAINING_INSTANCE_TYPE": "TrainingInstanceType",
    "TUNING_STRATEGY": "TuningStrategy",
    "MAX_JOBS": "MaxJobs",
    "MAX_PARALLEL_JOBS": "MaxParallelJobs",
    "WD_RANGE": "WdMin and WdMax",
    "LEARNING_RATE_RANGE": "LearningRateMin and LearningRateMax",
    "MINI_BATCH_SIZE_RANGE": "MiniBatchSizeMin and MiniBatchSizeMax",
    "OBJECTIVE_METRIC": "ObjectiveMetric",
    "OBJECTIVE_TYPE": "ObjectiveType",
    "HOSTING_INSTANCE_TYPE": "HostingInstanceType",
    "ENDPOINT_TYPE": "EndpointType",
    "SERVERLESS_MEMORY_MIB": "ServerlessMemoryMiB",
    "SERVERLESS_MAX_CONCURRENCY": "ServerlessMaxConcurrency",
    "KEEP_ENDPOINT": "KeepEndpoint",
    "NAME_PREFIX": "NamePrefix",
}


def _invalid(name: str, raw: object, expected: str) -> InvalidRequestError:
    """Build the CONFIG_INVALID error for a variable, naming its template parameter when it has one."""
    parameter = TEMPLATE_PARAMETERS.get(name)
    noun = "template parameters" if parameter and " and " in parameter else "template parameter"
    source = f" ({noun} {parameter})" if parameter else ""
    return InvalidRequestError(f"invalid {name}={raw!r}{source}: expected {expected}", code="CONFIG_INVALID")


def _require(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        parameter = TEMPLATE_PARAMETERS.get(name)
        fix = f"give the template parameter {parameter} a value" if parameter else "set it in template.yaml"
        raise InvalidRequestError(f"missing environment variable {name}: {fix}", code="CONFIG_MISSING")
    return value


def _integer(environ: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = _require(environ, name)
    try:
        value = int(raw)
    except ValueError as exc:
        raise _invalid(name, raw, "an integer") from exc
    if value < minimum:
        raise _invalid(name, value, f"at least {minimum}")
    return value


def _range(environ: Mapping[str, str], name: str, *, integer: bool = False) -> tuple[str, str]:
    raw = _require(environ, name)
    parts = [part.strip() for part in raw.split(",")]
    try:
        low, high = (float(part) for part in parts)
    except ValueError as exc:
        raise _invalid(name, raw, "'min,max'") from exc
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
        raise _invalid(name, raw, "finite numbers with 0 < min <= max")
    if integer:
        # CloudFormation's Number type lets 1e3 and 100.5 through, and IntegerParameterRanges
        # expect whole numbers written as such.
        if not (low.is_integer() and high.is_integer()):
            raise _invalid(name, raw, "whole numbers")
        return str(int(low)), str(int(high))
    return parts[0], parts[1]


@dataclass(frozen=True)
class CommonSettings:
    ledger_table: str
    idempotency_table: str
    runs_topic_arn: str
    artifacts_bucket: str
    results_bucket: str
    name_prefix: str

    @staticmethod
    def common_fields(environ: Mapping[str, str]) -> dict[str, str]:
        return {
            "ledger_table": _require(environ, "LEDGER_TABLE"),
            "idempotency_table": _require(environ, "IDEMPOTENCY_TABLE"),
            "runs_topic_arn": _require(environ, "RUNS_TOPIC_ARN"),
            "artifacts_bucket": _require(environ, "ARTIFACTS_BUCKET"),
            "results_bucket": _require(environ, "RESULTS_BUCKET"),
            "name_prefix": _require(environ, "NAME_PREFIX"),
        }


@dataclass(frozen=True)
class PrepareSettings(CommonSettings):
    positive_label: int
    max_upload_bytes: int
    max_decompressed_bytes: int
    shard_bytes: int
    training_instance_count: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PrepareSettings:
        return cls(
            **cls.common_fields(environ),
            positive_label=_integer(environ, "POSITIVE_LABEL"),
            max_upload_bytes=_integer(environ, "MAX_UPLOAD_MIB", 1) * MIB,
            max_decompressed_bytes=_integer(environ, "MAX_DECOMPRESSED_MIB", 1) * MIB,
            shard_bytes=_integer(environ, "SHARD_MIB", 1) * MIB,
            training_instance_count=_integer(environ, "TRAINING_INSTANCE_COUNT", 1),
        )


@dataclass(frozen=True)
class TuningSettings(CommonSettings):
    role_arn: str
    image: str
    strategy: str
    max_jobs: int
    max_parallel_jobs: int
    wd_range: tuple[str, str]
    learning_rate_range: tuple[str, str]
    mini_batch_size_range: tuple[str, str]
    objective_metric: str
    objective_type: str
    instance_type: str
    instance_count: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TuningSettings:
        return cls(
            **cls.common_fields(environ),
            role_arn=_require(environ, "SAGEMAKER_ROLE_ARN"),
            image=_require(environ, "LINEAR_LEARNER_IMAGE"),
            strategy=_require(environ, "TUNING_STRATEGY"),
            max_jobs=_integer(environ, "MAX_JOBS", 1),
            max_parallel_jobs=_integer(environ, "MAX_PARALLEL_JOBS", 1),
            wd_range=_range(environ, "WD_RANGE"),
            learning_rate_range=_range(environ, "LEARNING_RATE_RANGE"),
            mini_batch_size_range=_range(environ, "MINI_BATCH_SIZE_RANGE", integer=True),
            objective_metric=_require(environ, "OBJECTIVE_METRIC"),
            objective_type=_require(environ, "OBJECTIVE_TYPE"),
            instance_type=_require(environ, "TRAINING_INSTANCE_TYPE"),
            instance_count=_integer(environ, "TRAINING_INSTANCE_COUNT", 1),
        )


ENDPOINT_TYPES = ("instance", "serverless")
# ProductionVariantServerlessConfig accepts 1 GiB steps from 1024 to 6144 MB (SageMaker API reference).
SERVERLESS_MEMORY_SIZES_MIB = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY_LIMIT = 200


@dataclass(frozen=True)
class DeploySettings(CommonSettings):
    role_arn: str
    image: str
    hosting_instance_type: str
    endpoint_type: str
    serverless_memory_mib: int
    serverless_max_concurrency: int

    def __post_init__(self) -> None:
        # Checked here rather than in from_env, so settings built in code are held to the same rules.
        if self.endpoint_type not in ENDPOINT_TYPES:
            raise _invalid("ENDPOINT_TYPE", self.endpoint_type, f"one of {', '.join(ENDPOINT_TYPES)}")
        if self.serverless_memory_mib not in SERVERLESS_MEMORY_SIZES_MIB:
            sizes = ", ".join(map(str, SERVERLESS_MEMORY_SIZES_MIB))
            raise _invalid("SERVERLESS_MEMORY_MIB", self.serverless_memory_mib,
                           f"one of {sizes}, the sizes SageMaker accepts")
        if not 1 <= self.serverless_max_concurrency <= SERVERLESS_MAX_CONCURRENCY_LIMIT:
            raise _invalid("SERVERLESS_MAX_CONCURRENCY", self.serverless_max_concurrency,
                           f"1 to {SERVERLESS_MAX_CONCURRENCY_LIMIT}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DeploySettings:
        return cls(
            **cls.common_fields(environ),
            role_arn=_require(environ, "SAGEMAKER_ROLE_ARN"),
            image=_require(environ, "LINEAR_LEARNER_IMAGE"),
            hosting_instance_type=_require(environ, "HOSTING_INSTANCE_TYPE"),
            endpoint_type=_require(environ, "ENDPOINT_TYPE").lower(),
            serverless_memory_mib=_integer(environ, "SERVERLESS_MEMORY_MIB"),
            serverless_max_concurrency=_integer(environ, "SERVERLESS_MAX_CONCURRENCY"),
        )


@dataclass(frozen=True)
class EvaluateSettings(CommonSettings):
    keep_endpoint: bool

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EvaluateSettings:
        keep = _require(environ, "KEEP_ENDPOINT").lower()
        if keep not in ("true", "false"):
            raise _invalid("KEEP_ENDPOINT", keep, "true or false")
        return cls(**cls.common_fields(environ), keep_endpoint=keep == "true")


@dataclass(frozen=True)
class FailureSettings(CommonSettings):
    ingest_bucket: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> FailureSettings:
        return cls(**cls.common_fields(environ), ingest_bucket=_require(environ, "INGEST_BUCKET"))
