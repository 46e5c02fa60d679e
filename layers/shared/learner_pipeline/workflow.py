"""The four steps of a run. Each receives its settings and AWS adapters, so tests can pass fakes or moto."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from learner_pipeline.aws.sagemaker import SageMaker
from learner_pipeline.aws.storage import Storage
from learner_pipeline.aws.tracker import RunTracker
from learner_pipeline.config import CommonSettings, DeploySettings, EvaluateSettings, PrepareSettings, TuningSettings
from learner_pipeline.dataset import LoadLimits, load_dataset
from learner_pipeline.deploy import (best_training_job, endpoint_config_request, endpoint_request, model_request,
                                     tuning_failure)
from learner_pipeline.errors import EndpointFailedError, InvalidDatasetError, InvalidRequestError, PipelineError
from learner_pipeline.evaluation import evaluate_predictions
from learner_pipeline.failures import parse_failure, run_reference
from learner_pipeline.inference import TransientInvokeError, predict_all
from learner_pipeline.prepare import PrepareOptions, prepare_run
from learner_pipeline.runs import RunLayout, RunNames, RunStatus, run_id_for, run_id_from_manifest_key, run_id_from_name
from learner_pipeline.tuning import build_tuning_request

logger = Logger(child=True)

# Prepare stops reading this long before the function's own timeout, so it can still record the failure.
PREPARE_SAFETY_SECONDS = 60
RECORDIO = "application/x-recordio-protobuf"


@dataclass(frozen=True)
class StepResult:
    run_id: str | None
    outcome: str
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "outcome": self.outcome, "detail": self.detail}

    @property
    def metric_name(self) -> str:
        """The business metric this outcome counts toward."""
        return OUTCOME_METRICS.get(self.outcome, "EventsIgnored")


OUTCOME_METRICS = {
    "prepared": "RunsPrepared",
    "tuning": "TuningJobsStarted",
    "deploying": "EndpointsCreated",
    "succeeded": "RunsSucceeded",
    "failed": "RunsFailed",
}


def ignored_reason(run: dict[str, Any] | None) -> str:
    return "run not found in the ledger" if run is None else f"run is {run['status']}"


# ---- prepare -------------------------------------------------------------------------------------

def prepare_upload(bucket: str, key: str, version_id: str | None, etag: str | None, settings: PrepareSettings,
                   tracker: RunTracker, storage: Storage, seconds_left: float) -> StepResult:
    """Validate an uploaded dataset and write the run's RecordIO data; the manifest goes last."""
    key, head = storage.resolve_event_key(bucket, key, version_id)
    etag = etag or head.get("ETag")
    run_id = run_id_for(bucket, key, version_id, etag)
    logger.append_keys(run_id=run_id)
    source = {"bucket": bucket, "key": key, "version_id": version_id, "etag": (etag or "").strip('"'),
              "size": int(head.get("ContentLength", 0))}

    if not tracker.ledger.start(run_id, {"source": source, "positive_label": settings.positive_label}):
        existing = tracker.get(run_id) or {}
        if existing.get("status") != RunStatus.PREPARING.value:
            logger.info("run already past preparation; event ignored", extra={"status": existing.get("status")})
            return StepResult(run_id, "duplicate", str(existing.get("status")))
        logger.info("resuming a run left in PREPARING by an earlier attempt")
    tracker.write_status(run_id)

    try:
        manifest = _prepare(bucket, key, version_id, source, run_id, settings, storage, seconds_left)
    except InvalidDatasetError as error:
        tracker.fail(run_id, error)
        return StepResult(run_id, "failed", error.code)

    storage.write_json(settings.artifacts_bucket, RunLayout(run_id).manifest_key, manifest)
    tracker.ledger.record(run_id, {"rows": manifest["rows"], "feature_dim": manifest["feature_dim"],
                                   "notes": manifest["notes"]})
    logger.info("run prepared", extra={"rows": manifest["rows"], "feature_dim": manifest["feature_dim"]})
    return StepResult(run_id, "prepared", f"{sum(manifest['rows'].values())} rows")


def _prepare(bucket: str, key: str, version_id: str | None, source: dict[str, Any], run_id: str,
             settings: PrepareSettings, storage: Storage, seconds_left: float) -> dict[str, Any]:
    if source["size"] > settings.max_upload_bytes:
        raise InvalidDatasetError(
            f"upload {key} is {source['size']} bytes, above the limit of {settings.max_upload_bytes} bytes "
            "(parameter MaxUploadMiB); split the data or raise the limit", code="DATASET_TOO_LARGE")
    limits = LoadLimits(max_compressed_bytes=settings.max_upload_bytes,
                        max_decompressed_bytes=settings.max_decompressed_bytes,
                        deadline=time.monotonic() + max(1.0, seconds_left - PREPARE_SAFETY_SECONDS))
    dataset = load_dataset(storage.open(bucket, key, version_id), limits)

    def sink(object_key: str, body: bytes, content_type: str) -> None:
        storage.write_bytes(settings.artifacts_bucket, object_key, body, content_type)

    options = PrepareOptions(positive_label=settings.positive_label, shard_bytes=settings.shard_bytes,
                             training_instance_count=settings.training_instance_count)
    return prepare_run(dataset, RunLayout(run_id), options, sink, source)


# ---- start tuning --------------------------------------------------------------------------------

def start_tuning(bucket: str, key: str, settings: TuningSettings, tracker: RunTracker, storage: Storage,
                 sagemaker: SageMaker) -> StepResult:
    """Create the tuning job of a prepared run, once."""
    run_id = run_id_from_manifest_key(key)
    if bucket != settings.artifacts_bucket or run_id is None:
        raise InvalidRequestError(f"unexpected object s3://{bucket}/{key}: expected runs/<run_id>/manifest.json in "
                                  f"{settings.artifacts_bucket}", code="EVENT_UNEXPECTED")
    logger.append_keys(run_id=run_id)
    run = tracker.get(run_id)
    if run is None or run["status"] not in (RunStatus.PREPARING.value, RunStatus.TUNING.value):
        logger.info("run is not waiting for tuning; event ignored", extra={"status": (run or {}).get("status")})
        return StepResult(run_id, "ignored", ignored_reason(run))

    names = RunNames.for_run(settings.name_prefix, run_id)
    try:
        request = build_tuning_request(storage.read_json(bucket, key), settings)
    except (InvalidRequestError, ValueError) as error:
        failure = error if isinstance(error, PipelineError) else InvalidRequestError(
            f"manifest s3://{bucket}/{key} is not valid JSON: {error}; upload the dataset again",
            code="MANIFEST_INVALID")
        tracker.fail(run_id, failure)
        return StepResult(run_id, "failed", failure.code)
    try:
        created = sagemaker.create_once("create_hyper_parameter_tuning_job", request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("ResourceLimitExceeded", "ValidationException"):
            raise
        error = PipelineError(f"SageMaker rejected tuning job {names.tuning_job}: {exc}; check the training "
                              "instance type, count and their quota (parameters TrainingInstanceType, "
                              "TrainingInstanceCount and MaxParallelJobs) and the tuning ranges, then upload again",
                              code="TUNING_REJECTED")
        tracker.fail(run_id, error)
        return StepResult(run_id, "failed", error.code)
    tracker.advance(run_id, RunStatus.TUNING, {"tuning_job_name": names.tuning_job})
    logger.info("tuning job started", extra={"tuning_job_name": names.tuning_job, "newly_created": created})
    return StepResult(run_id, "tuning", names.tuning_job)


# ---- deploy --------------------------------------------------------------------------------------

def deploy_best_model(tuning_job_name: str, status: str, failure_reason: str | None, settings: DeploySettings,
                      tracker: RunTracker, sagemaker: SageMaker) -> StepResult:
    """Deploy the best model of a completed tuning job, or end the run when tuning failed or stopped."""
    run_id = run_id_from_name(settings.name_prefix, tuning_job_name)
    if run_id is None:
        return StepResult(None, "ignored", f"{tuning_job_name} is not a job of this stack")
    logger.append_keys(run_id=run_id)
    run = tracker.get(run_id)
    if run is None or run["status"] not in (RunStatus.TUNING.value, RunStatus.DEPLOYING.value):
        logger.info("run is not waiting for deployment; event ignored", extra={"status": (run or {}).get("status")})
        return StepResult(run_id, "ignored", ignored_reason(run))

    if status != "Completed":
        error = tuning_failure(tuning_job_name, status, failure_reason)
        tracker.fail(run_id, error)
        return StepResult(run_id, "failed", error.code)

    try:
        best = best_training_job(sagemaker.describe_tuning_job(tuning_job_name))
    except PipelineError as error:
        tracker.fail(run_id, error)
        return StepResult(run_id, "failed", error.code)
    model_data_url = sagemaker.describe_training_job(best.name)["ModelArtifacts"]["S3ModelArtifacts"]
    names = RunNames.for_run(settings.name_prefix, run_id)
    tracker.advance(run_id, RunStatus.DEPLOYING, {
        "best_training_job": best.name, "objective_metric": best.objective_metric,
        "objective_value": best.objective_value, "best_hyperparameters": best.tuned_hyperparameters,
        "model_name": names.model, "endpoint_config_name": names.endpoint_config, "endpoint_name": names.endpoint,
    })

    try:
        sagemaker.create_once("create_model", model_request(names, run_id, model_data_url, settings))
        sagemaker.create_once("create_endpoint_config", endpoint_config_request(names, run_id, settings))
        sagemaker.create_once("create_endpoint", endpoint_request(names, run_id))
    except ClientError as exc:
        # botocore already retried throttling and 5xx errors, so what reaches here is a quota or a
        # validation error that another attempt would repeat.
        hosting = ("the serverless memory and concurrency and their quota (parameters ServerlessMemoryMiB and "
                   "ServerlessMaxConcurrency)" if settings.endpoint_type == "serverless" else
                   "the hosting instance type and its quota (parameter HostingInstanceType)")
        error = PipelineError(f"SageMaker rejected the hosting of {names.endpoint}: {exc}; check {hosting}, "
                              "then upload again", code="DEPLOY_REJECTED")
        tracker.fail(run_id, error)
        clean_up_hosting(names, sagemaker, keep_model=False)
        return StepResult(run_id, "failed", error.code)
    logger.info("endpoint creation started", extra={"endpoint_name": names.endpoint, "best_training_job": best.name})
    return StepResult(run_id, "deploying", names.endpoint)


# ---- evaluate ------------------------------------------------------------------------------------

def evaluate_endpoint(endpoint_name: str, status: str, failure_reason: str | None, settings: EvaluateSettings,
                      tracker: RunTracker, storage: Storage, sagemaker: SageMaker) -> StepResult:
    """Predict the test split through an endpoint in service, write the results, then clean up."""
    run_id = run_id_from_name(settings.name_prefix, endpoint_name)
    if run_id is None:
        return StepResult(None, "ignored", f"{endpoint_name} is not an endpoint of this stack")
    logger.append_keys(run_id=run_id)
    run = tracker.get(run_id)
    if run is None or run["status"] not in (RunStatus.DEPLOYING.value, RunStatus.EVALUATING.value):
        logger.info("run is not waiting for evaluation; event ignored", extra={"status": (run or {}).get("status")})
        return StepResult(run_id, "ignored", ignored_reason(run))
    names = RunNames.for_run(settings.name_prefix, run_id)

    if status != "IN_SERVICE":
        error = EndpointFailedError(f"endpoint {endpoint_name} failed: {failure_reason or 'no reason given'}; "
                                    "check the hosting instance type's quota and the model artifacts, then upload "
                                    "again", code="ENDPOINT_FAILED")
        tracker.fail(run_id, error)
        clean_up_hosting(names, sagemaker, keep_model=False)
        return StepResult(run_id, "failed", error.code)

    tracker.advance(run_id, RunStatus.EVALUATING)
    try:
        results = _evaluate(run, run_id, names, settings, storage, sagemaker)
    except PipelineError as error:
        tracker.fail(run_id, error)
        clean_up_hosting(names, sagemaker, keep_model=False)
        return StepResult(run_id, "failed", error.code)

    if not settings.keep_endpoint:
        clean_up_hosting(names, sagemaker, keep_model=True)
    tracker.succeed(run_id, {"metrics": results["summary"], "endpoint_kept": settings.keep_endpoint})
    return StepResult(run_id, "succeeded", f"accuracy {results['summary']['accuracy']:.4f}")


def _evaluate(run: dict[str, Any], run_id: str, names: RunNames, settings: EvaluateSettings, storage: Storage,
              sagemaker: SageMaker) -> dict[str, Any]:
    layout = RunLayout(run_id)
    manifest = storage.read_json(settings.artifacts_bucket, layout.manifest_key)
    features = _load_npy(storage.read_bytes(settings.artifacts_bucket, layout.test_features_key))
    labels = _load_npy(storage.read_bytes(settings.artifacts_bucket, layout.test_labels_key))
    actual = (labels == manifest["positive_label"]).astype(np.int64)

    invoke = sagemaker.invoker(names.endpoint, TransientInvokeError)
    predictions = predict_all(features, invoke, content_type=RECORDIO)
    logger.info("test split predicted", extra={"calls": predictions.calls, "bytes_sent": predictions.bytes_sent})

    trials = sagemaker.list_trials(names.tuning_job)
    documents = evaluate_predictions(run=run, manifest=manifest, features=features, actual=actual,
                                     predictions=predictions, trials=trials)
    for filename, (body, content_type) in documents["files"].items():
        storage.write_bytes(settings.results_bucket, layout.result_key(filename), body, content_type)
    return documents


def _load_npy(body: bytes) -> np.ndarray:
    return np.load(io.BytesIO(body), allow_pickle=False)


def clean_up_hosting(names: RunNames, sagemaker: SageMaker, *, keep_model: bool) -> None:
    """Delete the run's endpoint and endpoint config (and model unless kept); missing ones are fine."""
    sagemaker.delete_quietly("delete_endpoint", EndpointName=names.endpoint)
    sagemaker.delete_quietly("delete_endpoint_config", EndpointConfigName=names.endpoint_config)
    if not keep_model:
        sagemaker.delete_quietly("delete_model", ModelName=names.model)
    logger.info("hosting resources deleted", extra={"endpoint_name": names.endpoint, "model_kept": keep_model})


# ---- a function that exhausted its retries -------------------------------------------------------

def record_function_failure(record: dict[str, Any], settings: CommonSettings, tracker: RunTracker,
                            sagemaker: SageMaker, ingest_bucket: str | None) -> StepResult:
    """End the run a failed invocation was about as FAILED, and clean up the hosting it may have created."""
    failure = parse_failure(record)
    reference = run_reference(failure.payload, settings.name_prefix, ingest_bucket)
    if not reference.run_ids:
        logger.error("failed invocation belongs to no run; its record stays in the dead-letter queue",
                     extra={"function_name": failure.function_name, "error_type": failure.error_type})
        return StepResult(None, "ignored", failure.function_name)

    run_id = next((candidate for candidate in reference.run_ids if tracker.get(candidate)), reference.run_ids[0])
    logger.append_keys(run_id=run_id)
    if tracker.get(run_id) is None and reference.upload is not None:
        # Prepare failed before it recorded the run: record it now so the upload gets a verdict.
        tracker.ledger.start(run_id, {"source": reference.upload})

    error = PipelineError(
        f"function {failure.function_name} failed after {failure.attempts} attempts: {failure.error_type}: "
        f"{failure.error_message[:500]}; the event is kept in the dead-letter queue. Read the function's "
        "CloudWatch logs, fix the cause, then upload the dataset again", code="FUNCTION_FAILED")
    failed = tracker.fail(run_id, error, {"failed_function": failure.function_name})
    if failed and reference.hosting_created:
        clean_up_hosting(RunNames.for_run(settings.name_prefix, run_id), sagemaker, keep_model=False)
    return StepResult(run_id, "failed" if failed else "ignored", error.code)
