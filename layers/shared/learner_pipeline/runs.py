"""Run identity, SageMaker resource names, run states and the storage layout of a run."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

RUN_ID_LENGTH = 16
# SageMaker name rules: tuning jobs at most 32 characters, models, endpoint configs and endpoints
# at most 63, all matching NAME_PATTERN. botocore checks neither, so the pipeline does.
MAX_TUNING_JOB_NAME = 32
MAX_RESOURCE_NAME = 63
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
RUN_ID_PATTERN = re.compile(rf"^[0-9a-f]{{{RUN_ID_LENGTH}}}$")
# S3 accepts keys of at most 1,024 bytes of UTF-8 (Amazon S3 user guide, "Naming Amazon S3 objects").
MAX_OBJECT_KEY_BYTES = 1024


class RunStatus(StrEnum):
    PREPARING = "PREPARING"
    TUNING = "TUNING"
    DEPLOYING = "DEPLOYING"
    EVALUATING = "EVALUATING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED)


# A run only moves forward: each status lists the statuses it may be entered from.
ALLOWED_PREDECESSORS: dict[RunStatus, tuple[RunStatus, ...]] = {
    RunStatus.TUNING: (RunStatus.PREPARING,),
    RunStatus.DEPLOYING: (RunStatus.TUNING,),
    RunStatus.EVALUATING: (RunStatus.DEPLOYING,),
    RunStatus.SUCCEEDED: (RunStatus.EVALUATING,),
    RunStatus.FAILED: (RunStatus.PREPARING, RunStatus.TUNING, RunStatus.DEPLOYING, RunStatus.EVALUATING),
}


def object_key_problem(key: str) -> str | None:
    """Return why S3 would reject ``key``, or None when it can store it.

    moto stores such keys anyway, so the command-line tools check before they upload.
    """
    # A file name that is not valid UTF-8 reaches Python with surrogate escapes.
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return f"key {key!r} is not valid UTF-8, which S3 requires"
    if size > MAX_OBJECT_KEY_BYTES:
        return f"key has {size} bytes in UTF-8, more than the {MAX_OBJECT_KEY_BYTES} S3 accepts"
    return None


def run_id_for(bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    """Derive the run id from the uploaded object's identity, so a repeated event maps to the same run.

    The version id identifies an object in a versioned bucket. Without one the ETag does, so
    re-uploading identical bytes under the same key in an unversioned bucket is the same run.
    """
    identity = version_id or (etag or "").strip('"')
    digest = hashlib.sha256("\n".join((bucket, key, identity)).encode("utf-8")).hexdigest()
    return digest[:RUN_ID_LENGTH]


def check_name(name: str, max_length: int) -> str:
    if len(name) > max_length or not NAME_PATTERN.match(name):
        raise ValueError(
            f"invalid SageMaker name {name!r}: it must match {NAME_PATTERN.pattern} "
            f"and have at most {max_length} characters"
        )
    return name


@dataclass(frozen=True)
class RunNames:
    """Names of the SageMaker resources of one run, all derived from the prefix and the run id."""

    tuning_job: str
    model: str
    endpoint_config: str
    endpoint: str

    @classmethod
    def for_run(cls, prefix: str, run_id: str) -> RunNames:
        base = f"{prefix}-{run_id}"
        return cls(
            tuning_job=check_name(base, MAX_TUNING_JOB_NAME),
            model=check_name(f"{base}-model", MAX_RESOURCE_NAME),
            endpoint_config=check_name(f"{base}-config", MAX_RESOURCE_NAME),
            endpoint=check_name(base, MAX_RESOURCE_NAME),
        )


def run_id_from_name(prefix: str, name: str) -> str | None:
    """Return the run id inside a tuning job or endpoint name of this stack, or None for a foreign name."""
    match = re.match(rf"^{re.escape(prefix)}-([0-9a-f]{{{RUN_ID_LENGTH}}})(-|$)", name)
    return match.group(1) if match else None


@dataclass(frozen=True)
class RunLayout:
    """S3 keys of one run in the artifacts and results buckets."""

    run_id: str

    @property
    def root(self) -> str:
        return f"runs/{self.run_id}/"

    @property
    def manifest_key(self) -> str:
        return f"{self.root}manifest.json"

    def channel_prefix(self, channel: str) -> str:
        return f"{self.root}data/{channel}/"

    def shard_key(self, channel: str, index: int) -> str:
        return f"{self.channel_prefix(channel)}part-{index:05d}.rec"

    @property
    def test_features_key(self) -> str:
        return f"{self.root}data/test/features.npy"

    @property
    def test_labels_key(self) -> str:
        return f"{self.root}data/test/labels.npy"

    @property
    def models_prefix(self) -> str:
        return f"{self.root}models/"

    def result_key(self, filename: str) -> str:
        return f"{self.root}{filename}"


def run_id_from_manifest_key(key: str) -> str | None:
    match = re.match(rf"^runs/([0-9a-f]{{{RUN_ID_LENGTH}}})/manifest\.json$", key)
    return match.group(1) if match else None
