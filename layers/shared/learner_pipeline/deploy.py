"""Hosting requests for the best model of a completed tuning job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from learner_pipeline.config import DeploySettings
from learner_pipeline.errors import TuningFailedError
from learner_pipeline.runs import RunNames
from learner_pipeline.tuning import RUN_TAG


@dataclass(frozen=True)
class BestTrainingJob:
    name: str
    objective_metric: str | None
    objective_value: float | None
    tuned_hyperparameters: dict[str, str]


def best_training_job(tuning_job: dict[str, Any]) -> BestTrainingJob:
    """Pick the best training job from a DescribeHyperParameterTuningJob response."""
    best = tuning_job.get("BestTrainingJob")
    if not best or not best.get("TrainingJobName"):
        raise TuningFailedError(
            f"tuning job {tuning_job.get('HyperParameterTuningJobName')} completed without a best training job: "
            "no trial produced the objective metric; check the training jobs' logs in CloudWatch",
            code="TUNING_NO_BEST_JOB",
        )
    objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    value = objective.get("Value")
    return BestTrainingJob(
        name=best["TrainingJobName"],
        objective_metric=objective.get("MetricName"),
        objective_value=float(value) if value is not None else None,
        tuned_hyperparameters=dict(best.get("TunedHyperParameters") or {}),
    )


def tuning_failure(tuning_job_name: str, status: str, reason: str | None) -> TuningFailedError:
    what_to_do = ("check the training jobs' CloudWatch logs, fix the data or the ranges, and upload again"
                  if status == "Failed" else "upload the dataset again to start a new run")
    return TuningFailedError(f"tuning job {tuning_job_name} {status.lower()}: {reason or 'no reason given'}; "
                             f"{what_to_do}", code=f"TUNING_{status.upper()}")


def model_request(names: RunNames, run_id: str, model_data_url: str, settings: DeploySettings) -> dict[str, Any]:
    return {
        "ModelName": names.model,
        "PrimaryContainer": {"Image": settings.image, "ModelDataUrl": model_data_url},
        "ExecutionRoleArn": settings.role_arn,
        "EnableNetworkIsolation": True,
        "Tags": [{"Key": RUN_TAG, "Value": run_id}],
    }


def production_variant(names: RunNames, settings: DeploySettings) -> dict[str, Any]:
    """Build the endpoint's one production variant: a single instance, or a serverless variant.

    The API reference describes ServerlessConfig as a configuration "instead of an instance-based"
    one, so a serverless variant carries no InstanceType and no InitialInstanceCount.
    """
    variant: dict[str, Any] = {"VariantName": "AllTraffic", "ModelName": names.model}
    if settings.endpoint_type == "serverless":
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": settings.serverless_memory_mib,
            "MaxConcurrency": settings.serverless_max_concurrency,
        }
    else:
        variant["InitialInstanceCount"] = 1
        variant["InstanceType"] = settings.hosting_instance_type
    return variant


def endpoint_config_request(names: RunNames, run_id: str, settings: DeploySettings) -> dict[str, Any]:
    return {
        "EndpointConfigName": names.endpoint_config,
        "ProductionVariants": [production_variant(names, settings)],
        "Tags": [{"Key": RUN_TAG, "Value": run_id}],
    }


def endpoint_request(names: RunNames, run_id: str) -> dict[str, Any]:
    return {
        "EndpointName": names.endpoint,
        "EndpointConfigName": names.endpoint_config,
        "Tags": [{"Key": RUN_TAG, "Value": run_id}],
    }
