"""The local SageMaker engine: moto's SageMaker control plane, with real training and serving.

moto stores SageMaker resources but completes a tuning job on creation with placeholder
results, and its InvokeEndpoint returns canned bodies. While the engine is started it patches
moto's backends (moto itself is unchanged):

- CreateHyperParameterTuningJob leaves the job InProgress and queues its trials. Each call of
  ``advance`` runs one wave of at most MaxParallelTrainingJobs trials in a thread pool, with
  ``sandbox.linear_learner.train`` on the channels read from moto S3. Every trial is a moto
  training job (DescribeTrainingJob, ListTrainingJobsForHyperParameterTuningJob) whose
  model.tar.gz is written to moto S3. The job then ends Completed with its BestTrainingJob, or
  Failed with a FailureReason.
- CreateEndpoint leaves the endpoint Creating; ``advance`` loads its model and moves it to
  InService, or to Failed when the model data cannot be loaded.
- InvokeEndpoint serves the loaded model in the Linear Learner request and response formats.
- Create* calls reject names SageMaker rejects (length, pattern, already existing), which
  botocore and moto do not check.

Each state change emits the EventBridge event SageMaker sends, through ``emit``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from datetime import datetime
from typing import Any
from unittest import mock
from urllib.parse import unquote

import boto3
import botocore.session
import numpy as np
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from learner_pipeline.recordio import RecordIOError, read_dense_tensor
from sandbox import events, serving
from sandbox.linear_learner import LinearModel, TrainingResult, train
from sandbox.tuning import (
    TUNING_JOB_NAME_MAX,
    Trial,
    best_index,
    check_name,
    check_parameter_ranges,
    plan_trials,
    waves,
)

logger = logging.getLogger(__name__)

EmitEvent = Callable[[dict[str, Any]], None]


@dataclass
class EngineStats:
    """Counts of what the engine created and served, for the sandbox summary."""

    tuning_jobs_created: int = 0
    training_jobs_created: int = 0
    models_created: int = 0
    endpoint_configs_created: int = 0
    endpoints_created: int = 0
    endpoints_deleted: int = 0
    invoke_endpoint_calls: int = 0
    invoke_endpoint_request_bytes: int = 0
    invoke_endpoint_errors: int = 0


@dataclass
class _Channels:
    train_x: np.ndarray
    train_y: np.ndarray
    validation_x: np.ndarray | None
    validation_y: np.ndarray | None


@dataclass
class _TuningRun:
    backend: SageMakerModelBackend
    name: str
    trials: list[Trial]
    waves: list[list[Trial]]
    next_wave: int = 0
    channels: _Channels | None = None
    data_error: str | None = None
    objective_values: dict[str, float | None] = field(default_factory=dict)
    failure_reasons: dict[str, str] = field(default_factory=dict)


@cache
def training_instance_types() -> frozenset[str]:
    """Return the values of the SageMaker API's TrainingInstanceType enum, from botocore's service model."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return frozenset(model.shape_for("TrainingInstanceType").enum)


def check_training_instance_type(instance_type: Any) -> None:
    """Reject an instance type that SageMaker does not train on, as its API validation does.

    botocore does not check enum values on the client side, and moto checks only hosting types.
    """
    if instance_type not in training_instance_types():
        raise ValueError(
            f"Value {instance_type!r} at 'trainingJobDefinition.resourceConfig.instanceType' failed to "
            "satisfy constraint: Member must satisfy enum value set of TrainingInstanceType, such as "
            "ml.c4.xlarge or ml.m5.xlarge"
        )


class ChannelError(ValueError):
    """A training channel is missing, empty or does not parse."""


class SageMakerEngine:
    """Patch moto's SageMaker backends while started; run queued work with ``advance``."""

    def __init__(self, emit: EmitEvent, *, seed: int = 0, max_workers: int | None = None) -> None:
        self._emit = emit
        self._seed = seed
        self._max_workers = max_workers or os.cpu_count() or 1
        self._pending: deque[tuple[str, Callable[[], None]]] = deque()
        self._served: dict[tuple[str, str, str], LinearModel] = {}
        self._lock = threading.Lock()
        self._patches = ExitStack()
        self.stats = EngineStats()

    # Lifecycle

    def start(self) -> SageMakerEngine:
        """Install the patches. Start a moto mock first; the engine lives inside it."""
        originals = {
            name: getattr(SageMakerModelBackend, name)
            for name in (
                "create_hyper_parameter_tuning_job",
                "create_model",
                "create_endpoint_config",
                "create_endpoint",
                "delete_endpoint",
            )
        }
        engine = self

        def create_tuning_job(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
            return engine._create_tuning_job(originals["create_hyper_parameter_tuning_job"], backend, *args, **kwargs)

        def create_model(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
            name = kwargs.get("model_name") or args[0]
            engine._check_new_resource(backend._models, "model", "ModelName", name, backend)
            created = originals["create_model"](backend, *args, **kwargs)
            engine.stats.models_created += 1
            return created

        def create_endpoint_config(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
            name = kwargs.get("endpoint_config_name") or args[0]
            engine._check_new_resource(backend.endpoint_configs, "endpoint configuration", "EndpointConfigName", name, backend)
            created = originals["create_endpoint_config"](backend, *args, **kwargs)
            engine.stats.endpoint_configs_created += 1
            return created

        def create_endpoint(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
            return engine._create_endpoint(originals["create_endpoint"], backend, *args, **kwargs)

        def delete_endpoint(backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> None:
            name = kwargs.get("endpoint_name") or args[0]
            originals["delete_endpoint"](backend, *args, **kwargs)
            engine._served.pop((backend.account_id, backend.region_name, name), None)
            engine.stats.endpoints_deleted += 1

        def list_trials(response: SageMakerResponse) -> ActionResult:
            return engine._list_training_jobs_for_tuning_job(response)

        def invoke_endpoint(response: SageMakerRuntimeResponse) -> tuple[int, dict[str, str], bytes]:
            return engine._invoke_endpoint(response)

        replacements = {
            "create_hyper_parameter_tuning_job": create_tuning_job,
            "create_model": create_model,
            "create_endpoint_config": create_endpoint_config,
            "create_endpoint": create_endpoint,
            "delete_endpoint": delete_endpoint,
        }
        for name, replacement in replacements.items():
            self._patches.enter_context(mock.patch.object(SageMakerModelBackend, name, replacement))
        self._patches.enter_context(
            mock.patch.object(
                SageMakerResponse, "list_training_jobs_for_hyper_parameter_tuning_job", list_trials, create=True
            )
        )
        self._patches.enter_context(mock.patch.object(SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint))
        # moto decodes request bodies as UTF-8 unless use_raw_body is set, and RecordIO is binary.
        self._patches.enter_context(mock.patch.object(SageMakerRuntimeResponse, "use_raw_body", True))
        return self

    def stop(self) -> None:
        self._patches.close()

    def __enter__(self) -> SageMakerEngine:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Work queue

    def has_pending_work(self) -> bool:
        return bool(self._pending)

    def advance(self) -> str | None:
        """Run the oldest queued piece of work; return its description, or None when idle."""
        if not self._pending:
            return None
        description, work = self._pending.popleft()
        logger.info("engine: %s", description)
        work()
        return description

    def run_until_idle(self) -> None:
        while self.advance() is not None:
            pass

    def alive_endpoints(self) -> list[str]:
        """Return the names of the endpoints that exist in moto, in every account and region."""
        names = []
        for account_id, regions in sagemaker_backends.items():
            for region, backend in regions.items():
                names.extend(backend.endpoints)
        return sorted(names)

    def summary(self) -> dict[str, Any]:
        return {**asdict(self.stats), "endpoints_alive": self.alive_endpoints()}

    # Tuning

    def _create_tuning_job(self, original: Callable[..., str], backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> str:
        name = kwargs["hyper_parameter_tuning_job_name"]
        config = kwargs["hyper_parameter_tuning_job_config"]
        definition = kwargs.get("training_job_definition")
        try:
            check_name("hyperParameterTuningJobName", name, TUNING_JOB_NAME_MAX)
            if definition is None:
                raise ValueError("the sandbox engine needs TrainingJobDefinition (TrainingJobDefinitions is not supported)")
            check_parameter_ranges(config.get("ParameterRanges", {}))
            check_training_instance_type(definition.get("ResourceConfig", {}).get("InstanceType"))
            max_parallel = int(config["ResourceLimits"]["MaxParallelTrainingJobs"])
            if max_parallel < 1 or int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"]) < 1:
                raise ValueError("ResourceLimits must allow at least one training job")
        except (ValueError, KeyError) as exc:
            raise ValidationError(message=str(exc)) from exc

        arn = original(backend, *args, **kwargs)
        job = backend.hyper_parameter_tuning_jobs[name]
        now = utcnow()
        job.hyper_parameter_tuning_job_status = "InProgress"
        job.hyper_parameter_tuning_end_time = None
        job.last_modified_time = now
        job.training_job_status_counters = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
        job.objective_status_counters = {"Succeeded": 0, "Pending": 0, "Failed": 0}
        job.best_training_job = None
        job.OverallBestTrainingJob = None
        job.failure_reason = None
        job.tuning_job_completion_details = None
        job.consumed_resources = None
        self.stats.tuning_jobs_created += 1

        trials = plan_trials(name, config, definition.get("StaticHyperParameters", {}), seed=self._seed)
        run = _TuningRun(backend=backend, name=name, trials=trials, waves=waves(trials, max_parallel))
        self._emit_tuning_event(run)
        self._pending.append((f"tuning job {name}: wave 1 of {len(run.waves)}", lambda: self._run_wave(run)))
        return arn

    def _run_wave(self, run: _TuningRun) -> None:
        job = run.backend.hyper_parameter_tuning_jobs.get(run.name)
        if job is None:
            return
        definition = job.training_job_definition
        if run.channels is None and run.data_error is None:
            try:
                run.channels = _read_channels(definition["InputDataConfig"], run.backend.region_name)
            except ChannelError as exc:
                logger.warning("tuning job %s: training data cannot be read: %s", run.name, exc)
                run.data_error = str(exc)

        wave = run.waves[run.next_wave]
        run.next_wave += 1
        training_jobs = [self._start_training_job(run, job, trial) for trial in wave]

        with ThreadPoolExecutor(max_workers=min(len(wave), self._max_workers)) as pool:
            outcomes = list(pool.map(lambda trial: self._train_trial(run, trial), wave))

        for trial, training_job, outcome in zip(wave, training_jobs, outcomes, strict=True):
            self._finish_training_job(run, job, trial, training_job, outcome)

        first_wave_failed = run.next_wave == 1 and all(run.objective_values.get(trial.name) is None for trial in wave)
        if run.next_wave < len(run.waves) and not first_wave_failed:
            description = f"tuning job {run.name}: wave {run.next_wave + 1} of {len(run.waves)}"
            self._pending.append((description, lambda: self._run_wave(run)))
        else:
            self._finish_tuning_job(run, job)

    def _start_training_job(self, run: _TuningRun, job: Any, trial: Trial) -> Any:
        definition = copy.deepcopy(job.training_job_definition)
        algorithm = definition.get("AlgorithmSpecification", {})
        metric_definitions = algorithm.get("MetricDefinitions")
        training_job = run.backend.create_training_job(
            training_job_name=trial.name,
            hyper_parameters=dict(trial.hyperparameters),
            algorithm_specification=algorithm,
            role_arn=definition.get("RoleArn"),
            input_data_config=definition.get("InputDataConfig"),
            output_data_config=definition.get("OutputDataConfig"),
            resource_config=definition.get("ResourceConfig"),
            vpc_config=definition.get("VpcConfig"),
            stopping_condition=definition.get("StoppingCondition"),
            tags=[],
            enable_network_isolation=definition.get("EnableNetworkIsolation", False),
            enable_inter_container_traffic_encryption=definition.get("EnableInterContainerTrafficEncryption", False),
            enable_managed_spot_training=definition.get("EnableManagedSpotTraining", False),
            checkpoint_config=definition.get("CheckpointConfig"),
            debug_hook_config=None,
            debug_rule_configurations=None,
            tensor_board_output_config=None,
            experiment_config=None,
        )

        # moto fills in a placeholder metric definition and completed results: reset them.
        if metric_definitions is None:
            training_job.algorithm_specification.pop("MetricDefinitions", None)
        else:
            training_job.algorithm_specification["MetricDefinitions"] = metric_definitions

        now = utcnow()
        training_job.tuning_job_arn = job.arn
        training_job.training_job_status = "InProgress"
        training_job.secondary_status = "Training"
        training_job.training_start_time = now
        training_job.training_end_time = None
        training_job.final_metric_data_list = None
        training_job.model_artifacts = None
        training_job.failure_reason = None
        training_job.secondary_status_transitions = [
            {"Status": "Training", "StartTime": now, "StatusMessage": "Training image download completed. Training in progress."}
        ]

        self.stats.training_jobs_created += 1
        job.training_job_status_counters["InProgress"] += 1
        job.objective_status_counters["Pending"] += 1
        self._emit_training_event(run, trial.name)
        return training_job

    def _train_trial(self, run: _TuningRun, trial: Trial) -> TrainingResult | str:
        """Train one trial; return its result, or the failure reason SageMaker would report."""
        if run.data_error is not None:
            return f"ClientError: {run.data_error}"
        channels = run.channels
        assert channels is not None
        try:
            return train(
                channels.train_x,
                channels.train_y,
                channels.validation_x,
                channels.validation_y,
                trial.hyperparameters,
                seed=trial.seed,
            )
        except ValueError as exc:
            logger.warning("training job %s failed: %s", trial.name, exc)
            return f"ClientError: {exc}"

    def _finish_training_job(self, run: _TuningRun, job: Any, trial: Trial, training_job: Any, outcome: TrainingResult | str) -> None:
        now = utcnow()
        objective = job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]["MetricName"]
        job.training_job_status_counters["InProgress"] -= 1
        job.objective_status_counters["Pending"] -= 1

        if isinstance(outcome, str):
            training_job.training_job_status = "Failed"
            training_job.secondary_status = "Failed"
            training_job.failure_reason = outcome
            job.training_job_status_counters["NonRetryableError"] += 1
            job.objective_status_counters["Failed"] += 1
            run.failure_reasons[trial.name] = outcome
            run.objective_values[trial.name] = None
        else:
            artifact_uri = _model_artifact_uri(training_job.output_data_config["S3OutputPath"], trial.name)
            _put_s3_object(artifact_uri, outcome.model.to_tar_gz(), run.backend.region_name)
            training_job.training_job_status = "Completed"
            training_job.secondary_status = "Completed"
            training_job.model_artifacts = {"S3ModelArtifacts": artifact_uri}
            training_job.final_metric_data_list = [
                {"MetricName": metric, "Value": float(value), "Timestamp": now}
                for metric, value in sorted(outcome.metrics.items())
            ]
            job.training_job_status_counters["Completed"] += 1
            value = outcome.metrics.get(objective)
            has_objective = value is not None and math.isfinite(value)
            job.objective_status_counters["Succeeded" if has_objective else "Failed"] += 1
            run.objective_values[trial.name] = float(value) if has_objective else None
            if not has_objective:
                run.failure_reasons[trial.name] = f"the training job did not report the objective metric {objective}"

        training_job.training_end_time = now
        training_job.last_modified_time = now
        started = training_job.training_start_time
        training_job.training_time_in_seconds = max(1, int((now - started).total_seconds()))
        training_job.billable_time_in_seconds = training_job.training_time_in_seconds
        training_job.secondary_status_transitions[-1]["EndTime"] = now
        training_job.secondary_status_transitions.append(
            {"Status": training_job.secondary_status, "StartTime": now, "EndTime": now,
             "StatusMessage": training_job.failure_reason or "Training job completed"}
        )
        job.last_modified_time = now
        self._emit_training_event(run, trial.name)

    def _finish_tuning_job(self, run: _TuningRun, job: Any) -> None:
        objective = job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]
        started = [trial for trial in run.trials if trial.name in run.objective_values]
        best = best_index([run.objective_values[trial.name] for trial in started], objective["Type"])
        now = utcnow()

        if best is None:
            job.hyper_parameter_tuning_job_status = "Failed"
            first_failure = next(iter(run.failure_reasons.items()), ("", "no training job ran"))
            job.failure_reason = (
                f"All training jobs failed. Training job {first_failure[0]} failed with: {first_failure[1]}"
            )
        else:
            job.hyper_parameter_tuning_job_status = "Completed"
            job.best_training_job = self._trial_summary(run, started[best].name)
            job.tuning_job_completion_details = {"NumberOfTrainingJobsObjectiveNotImproving": 0}

        job.hyper_parameter_tuning_end_time = now
        job.last_modified_time = now
        job.consumed_resources = {"RuntimeInSeconds": max(1, int((now - job.creation_time).total_seconds()))}
        self._emit_tuning_event(run)

    def _trial_summary(self, run: _TuningRun, training_job_name: str) -> dict[str, Any]:
        """Return a HyperParameterTrainingJobSummary of one trial."""
        job = run.backend.hyper_parameter_tuning_jobs[run.name]
        training_job = run.backend.training_jobs[training_job_name]
        trial = next(trial for trial in run.trials if trial.name == training_job_name)
        objective = job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]

        summary: dict[str, Any] = {
            "TrainingJobName": training_job.training_job_name,
            "TrainingJobArn": training_job.arn,
            "TuningJobName": run.name,
            "CreationTime": training_job.creation_time,
            "TrainingStartTime": training_job.training_start_time,
            "TrainingJobStatus": training_job.training_job_status,
            "TunedHyperParameters": dict(trial.tuned_hyperparameters),
        }
        if training_job.training_end_time is not None:
            summary["TrainingEndTime"] = training_job.training_end_time
        if training_job.failure_reason:
            summary["FailureReason"] = training_job.failure_reason

        if training_job.training_job_status == "InProgress":
            summary["ObjectiveStatus"] = "Pending"
        elif run.objective_values.get(training_job_name) is None:
            summary["ObjectiveStatus"] = "Failed"
        else:
            summary["ObjectiveStatus"] = "Succeeded"
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": objective["Type"],
                "MetricName": objective["MetricName"],
                "Value": run.objective_values[training_job_name],
            }
        return summary

    def _list_training_jobs_for_tuning_job(self, response: SageMakerResponse) -> ActionResult:
        backend = response.sagemaker_backend
        name = response._get_param("HyperParameterTuningJobName")
        job = backend.hyper_parameter_tuning_jobs.get(name)
        if job is None:
            raise ResourceNotFound(message=f"Amazon SageMaker can't find a tuning job with name {name}")

        status = response._get_param("StatusEquals")
        sort_by = response._get_param("SortBy") or "Name"
        descending = (response._get_param("SortOrder") or "Ascending") == "Descending"
        max_results = int(response._get_param("MaxResults") or 10)
        if not 1 <= max_results <= 100:
            raise ValidationError(message=f"MaxResults must be between 1 and 100, got {max_results}")

        run = _TuningRunView(backend, job)
        summaries = [self._trial_summary(run, training_job.training_job_name) for training_job in run.training_jobs()]
        if status:
            summaries = [summary for summary in summaries if summary["TrainingJobStatus"] == status]
        summaries.sort(key=_summary_sort_key(sort_by), reverse=descending)

        start = int(response._get_param("NextToken") or 0)
        page = summaries[start : start + max_results]
        result: dict[str, Any] = {"TrainingJobSummaries": page}
        if start + max_results < len(summaries):
            result["NextToken"] = str(start + max_results)
        return ActionResult(result)

    # Endpoints

    def _check_new_resource(self, existing: Any, kind: str, field_name: str, name: str, backend: SageMakerModelBackend) -> None:
        try:
            check_name(field_name[0].lower() + field_name[1:], name)
        except ValueError as exc:
            raise ValidationError(message=str(exc)) from exc
        if name in existing:
            resource = {"model": "model", "endpoint configuration": "endpoint-config", "endpoint": "endpoint"}[kind]
            arn = f"arn:aws:sagemaker:{backend.region_name}:{backend.account_id}:{resource}/{name.lower()}"
            raise ValidationError(message=f'Cannot create already existing {kind} "{arn}".')

    def _create_endpoint(self, original: Callable[..., Any], backend: SageMakerModelBackend, *args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("endpoint_name") or args[0]
        self._check_new_resource(backend.endpoints, "endpoint", "EndpointName", name, backend)
        endpoint = original(backend, *args, **kwargs)
        endpoint.endpoint_status = "Creating"
        self.stats.endpoints_created += 1
        self._emit_endpoint_event(backend, endpoint)
        self._pending.append((f"endpoint {name}: bring into service", lambda: self._bring_into_service(backend, name)))
        return endpoint

    def _bring_into_service(self, backend: SageMakerModelBackend, name: str) -> None:
        endpoint = backend.endpoints.get(name)
        if endpoint is None or endpoint.endpoint_status != "Creating":
            return
        try:
            model = self._load_endpoint_model(backend, endpoint)
        except (ValueError, KeyError) as exc:
            logger.warning("endpoint %s failed: %s", name, exc)
            endpoint.endpoint_status = "Failed"
            endpoint.failure_reason = str(exc)
        else:
            endpoint.endpoint_status = "InService"
            self._served[(backend.account_id, backend.region_name, name)] = model
        endpoint.last_modified_time = utcnow()
        self._emit_endpoint_event(backend, endpoint)

    def _load_endpoint_model(self, backend: SageMakerModelBackend, endpoint: Any) -> LinearModel:
        config = backend.endpoint_configs[endpoint.endpoint_config_name]
        # NOTE: only the first production variant is served; traffic weights are ignored.
        variant = config.production_variants[0]
        model = backend._models[variant["ModelName"]]
        container = model.primary_container or (model.containers[0] if model.containers else {})
        model_data_url = container.get("ModelDataUrl")
        if not model_data_url:
            raise ValueError(f"Model {model.model_name} has no ModelDataUrl: the Linear Learner container needs model data.")

        try:
            data = _get_s3_object(model_data_url, backend.region_name)
        except ChannelError:
            raise ValueError(
                f'Failed to download model data for container "container_1" from URL: "{model_data_url}". '
                "Please ensure that there is an object located at the URL and that the role passed to "
                "CreateModel has permissions to download the object."
            ) from None
        try:
            return LinearModel.from_tar_gz(data)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"Failed to load the model from {model_data_url}: {exc}") from exc

    def _invoke_endpoint(self, response: SageMakerRuntimeResponse) -> tuple[int, dict[str, str], bytes]:
        account_id, region = response.current_account, response.region
        # The request path is /endpoints/<EndpointName>/invocations.
        name = unquote(response.parsed_url.path.split("/")[2])
        body = response.raw_body if isinstance(response.raw_body, bytes) else (response.raw_body or "").encode()
        headers = {key.lower(): value for key, value in response.headers.items()}

        with self._lock:
            self.stats.invoke_endpoint_calls += 1
            self.stats.invoke_endpoint_request_bytes += len(body)
        try:
            payload, content_type, variant = self._predict(account_id, region, name, body, headers)
        except serving.InvocationError as error:
            with self._lock:
                self.stats.invoke_endpoint_errors += 1
            # moto takes the HTTP status from the "status" header, not from the tuple.
            error_headers = {"status": str(error.status), "Content-Type": "application/json", "x-amzn-ErrorType": error.code}
            return error.status, error_headers, error.body()
        return 200, {"Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": variant}, payload

    def _predict(self, account_id: str, region: str, name: str, body: bytes, headers: dict[str, str]) -> tuple[bytes, str, str]:
        if len(body) > serving.MAX_PAYLOAD_BYTES:
            raise serving.validation_error(
                f"Request body of {len(body)} bytes is too large: InvokeEndpoint accepts at most "
                f"{serving.MAX_PAYLOAD_BYTES} bytes."
            )
        backend = sagemaker_backends[account_id][region]
        endpoint = backend.endpoints.get(name)
        model = self._served.get((account_id, region, name))
        if endpoint is None or model is None:
            raise serving.validation_error(f"Endpoint {name} of account {account_id} not found.")

        content_type = headers.get("content-type", serving.CSV)
        try:
            features = serving.parse_features(body, content_type)
            if features.shape[1] != model.feature_dim:
                raise serving.ContainerError(
                    400,
                    f"Invalid input: each record must have {model.feature_dim} features (the model's "
                    f"feature_dim), got {features.shape[1]}.",
                )
            scores, labels = model.predict(features)
            is_recordio = serving.media_type(content_type, serving.CSV) == serving.RECORDIO
            payload, response_type = serving.encode_predictions(
                scores, labels, accept=headers.get("accept"), label_as_float=is_recordio
            )
        except serving.ContainerError as exc:
            raise serving.model_error(
                endpoint_name=name,
                region=region,
                account_id=account_id,
                original_status=exc.status,
                original_message=exc.message,
            ) from exc
        variant = endpoint.production_variants[0]["VariantName"] if endpoint.production_variants else "AllTraffic"
        return payload, response_type, variant

    # Events

    def _emit_tuning_event(self, run: _TuningRun) -> None:
        job = run.backend.hyper_parameter_tuning_jobs[run.name]
        event = events.tuning_job_state_change(
            name=job.hyper_parameter_tuning_job_name,
            arn=job.arn,
            status=job.hyper_parameter_tuning_job_status,
            config=job.hyper_parameter_tuning_job_config,
            training_job_definition=job.training_job_definition,
            training_job_status_counters=job.training_job_status_counters,
            objective_status_counters=job.objective_status_counters,
            creation_time=job.creation_time,
            last_modified_time=job.last_modified_time,
            region=run.backend.region_name,
            account_id=run.backend.account_id,
            tags=events.tags_map(job.tags),
            failure_reason=job.failure_reason,
        )
        self._emit(json.loads(json.dumps(event, default=_json_default)))

    def _emit_training_event(self, run: _TuningRun, training_job_name: str) -> None:
        description = run.backend.describe_training_job(training_job_name)
        event = events.training_job_state_change(
            description=description, region=run.backend.region_name, account_id=run.backend.account_id
        )
        self._emit(json.loads(json.dumps(event, default=_json_default)))

    def _emit_endpoint_event(self, backend: SageMakerModelBackend, endpoint: Any) -> None:
        event = events.endpoint_state_change(
            name=endpoint.endpoint_name,
            arn=endpoint.arn,
            config_name=endpoint.endpoint_config_name,
            status=endpoint.endpoint_status,
            production_variants=endpoint.production_variants,
            creation_time=endpoint.creation_time,
            last_modified_time=endpoint.last_modified_time,
            region=backend.region_name,
            account_id=backend.account_id,
            tags=events.tags_map(endpoint.tags),
            failure_reason=endpoint.failure_reason,
        )
        self._emit(event)


class _TuningRunView(_TuningRun):
    """A tuning run rebuilt from moto's state, for listing trials of any tuning job."""

    def __init__(self, backend: SageMakerModelBackend, job: Any) -> None:
        training_jobs = [
            training_job
            for training_job in backend.training_jobs.values()
            if getattr(training_job, "tuning_job_arn", None) == job.arn
        ]
        objective = job.hyper_parameter_tuning_job_config["HyperParameterTuningJobObjective"]["MetricName"]
        trials = [
            Trial(
                index=position,
                name=training_job.training_job_name,
                tuned_hyperparameters=_tuned(job, training_job),
                hyperparameters=training_job.hyper_parameters,
                seed=0,
            )
            for position, training_job in enumerate(training_jobs)
        ]
        values = {
            training_job.training_job_name: _final_metric(training_job, objective) for training_job in training_jobs
        }
        super().__init__(backend=backend, name=job.hyper_parameter_tuning_job_name, trials=trials, waves=[], objective_values=values)
        self._training_jobs = training_jobs

    def training_jobs(self) -> list[Any]:
        return self._training_jobs


def _tuned(job: Any, training_job: Any) -> dict[str, str]:
    ranges = job.hyper_parameter_tuning_job_config.get("ParameterRanges", {})
    names = {spec["Name"] for kind in ranges.values() if isinstance(kind, list) for spec in kind}
    return {name: value for name, value in training_job.hyper_parameters.items() if name in names}


def _final_metric(training_job: Any, metric_name: str) -> float | None:
    for metric in training_job.final_metric_data_list or []:
        if metric["MetricName"] == metric_name:
            return float(metric["Value"])
    return None


def _summary_sort_key(sort_by: str) -> Callable[[dict[str, Any]], Any]:
    if sort_by == "CreationTime":
        return lambda summary: summary["CreationTime"]
    if sort_by == "Status":
        return lambda summary: summary["TrainingJobStatus"]
    if sort_by == "FinalObjectiveMetricValue":
        return lambda summary: summary.get("FinalHyperParameterTuningJobObjectiveMetric", {}).get("Value", -math.inf)
    return lambda summary: summary["TrainingJobName"]


def _read_channels(input_data_config: list[dict[str, Any]], region: str) -> _Channels:
    """Read the train and validation channels from S3, concatenating every object of a prefix.

    NOTE: with ShardedByS3Key each instance of a multi-instance job reads a share of the objects.
    The engine trains in one process, so it reads all of them whatever the distribution type.
    """
    channels = {channel["ChannelName"]: channel for channel in input_data_config}
    if "train" not in channels:
        raise ChannelError("Channel 'train' is required for Linear Learner but was not provided.")

    train_x, train_y = _read_channel(channels["train"], region)
    validation_x = validation_y = None
    if "validation" in channels:
        validation_x, validation_y = _read_channel(channels["validation"], region)
    return _Channels(train_x, train_y, validation_x, validation_y)


def _read_channel(channel: dict[str, Any], region: str) -> tuple[np.ndarray, np.ndarray]:
    name = channel["ChannelName"]
    source = channel["DataSource"]["S3DataSource"]
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise ChannelError(f"Channel '{name}': only S3DataType S3Prefix is supported by the sandbox engine.")
    if channel.get("CompressionType", "None") != "None":
        raise ChannelError(f"Channel '{name}': CompressionType {channel['CompressionType']} is not supported.")

    content_type = serving.media_type(channel.get("ContentType"), serving.RECORDIO)
    bucket, prefix = _split_s3_uri(source["S3Uri"])
    s3 = boto3.client("s3", region_name=region)
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if not item["Key"].endswith("/")
    ]
    if not keys:
        raise ChannelError(f'Data download failed: No S3 objects found under S3 URL "{source["S3Uri"]}".')

    features, labels = [], []
    for key in sorted(keys):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            shard_features, shard_labels = _decode_training_data(body, content_type)
        except (RecordIOError, ValueError) as exc:
            raise ChannelError(f"Unable to read data channel '{name}' from s3://{bucket}/{key}: {exc}") from exc
        features.append(shard_features)
        labels.append(shard_labels)

    widths = {array.shape[1] for array in features}
    if len(widths) != 1:
        raise ChannelError(f"Channel '{name}': objects have different feature counts {sorted(widths)}.")
    return np.concatenate(features), np.concatenate(labels)


def _decode_training_data(body: bytes, content_type: str) -> tuple[np.ndarray, np.ndarray]:
    if content_type == serving.RECORDIO:
        features, labels = read_dense_tensor(body)
        if labels is None:
            raise ValueError("records carry no label: Linear Learner training data needs a label per record")
        return np.asarray(features), np.asarray(labels).reshape(-1)
    if content_type == serving.CSV:
        rows = np.loadtxt(body.decode("utf-8").splitlines(), delimiter=",", dtype=np.float32, ndmin=2)
        return rows[:, 1:], rows[:, 0]
    raise ValueError(f"content type {content_type} is not supported for training: use {serving.RECORDIO} or {serving.CSV}")


def _model_artifact_uri(output_path: str, training_job_name: str) -> str:
    return f"{output_path.rstrip('/')}/{training_job_name}/output/model.tar.gz"


def _split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ChannelError(f"{uri} is not an S3 URI (s3://bucket/key)")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def _put_s3_object(uri: str, body: bytes, region: str) -> None:
    bucket, key = _split_s3_uri(uri)
    boto3.client("s3", region_name=region).put_object(Bucket=bucket, Key=key, Body=body)


def _get_s3_object(uri: str, region: str) -> bytes:
    bucket, key = _split_s3_uri(uri)
    s3 = boto3.client("s3", region_name=region)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey as exc:
        raise ChannelError(f"s3://{bucket}/{key} does not exist") from exc
    except s3.exceptions.NoSuchBucket as exc:
        raise ChannelError(f"bucket {bucket} does not exist") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return events.epoch_millis(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@contextmanager
def running_engine(emit: EmitEvent, **options: Any) -> Iterator[SageMakerEngine]:
    """Start an engine for the duration of a ``with`` block (inside an active moto mock)."""
    engine = SageMakerEngine(emit, **options)
    with engine:
        yield engine
