"""The CreateHyperParameterTuningJob request of a prepared run."""

from __future__ import annotations

from typing import Any

from learner_pipeline.config import TuningSettings
from learner_pipeline.errors import InvalidRequestError
from learner_pipeline.runs import RunLayout, RunNames

RECORDIO_CONTENT_TYPE = "application/x-recordio-protobuf"
RUN_TAG = "linear-learner-pipeline:run-id"


def _channel(name: str, bucket: str, prefix: str, distribution: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": f"s3://{bucket}/{prefix}",
                "S3DataDistributionType": distribution,
            }
        },
        "ContentType": RECORDIO_CONTENT_TYPE,
        "CompressionType": "None",
    }


def build_tuning_request(manifest: dict[str, Any], settings: TuningSettings) -> dict[str, Any]:
    """Return the keyword arguments of CreateHyperParameterTuningJob for the run the manifest describes."""
    try:
        run_id = manifest["run_id"]
        feature_dim = int(manifest["feature_dim"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidRequestError(f"invalid manifest: {exc!r} is missing or malformed; re-upload the dataset",
                                  code="MANIFEST_INVALID") from exc
    layout = RunLayout(run_id)
    names = RunNames.for_run(settings.name_prefix, run_id)
    # With several instances each one reads its own shards of the train channel.
    train_distribution = "ShardedByS3Key" if settings.instance_count > 1 else "FullyReplicated"
    tags = [{"Key": RUN_TAG, "Value": run_id}]

    return {
        "HyperParameterTuningJobName": names.tuning_job,
        "HyperParameterTuningJobConfig": {
            "Strategy": settings.strategy,
            "HyperParameterTuningJobObjective": {
                "Type": settings.objective_type,
                "MetricName": settings.objective_metric,
            },
            "ResourceLimits": {
                "MaxNumberOfTrainingJobs": settings.max_jobs,
                "MaxParallelTrainingJobs": settings.max_parallel_jobs,
            },
            "ParameterRanges": {
                "ContinuousParameterRanges": [
                    {"Name": "wd", "MinValue": settings.wd_range[0], "MaxValue": settings.wd_range[1],
                     "ScalingType": "Auto"},
                    {"Name": "learning_rate", "MinValue": settings.learning_rate_range[0],
                     "MaxValue": settings.learning_rate_range[1], "ScalingType": "Auto"},
                ],
                "IntegerParameterRanges": [
                    {"Name": "mini_batch_size", "MinValue": settings.mini_batch_size_range[0],
                     "MaxValue": settings.mini_batch_size_range[1], "ScalingType": "Auto"},
                ],
                "CategoricalParameterRanges": [],
            },
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {
                "feature_dim": str(feature_dim),
                "predictor_type": "binary_classifier",
            },
            "AlgorithmSpecification": {
                "TrainingImage": settings.image,
                "TrainingInputMode": "File",
            },
            "RoleArn": settings.role_arn,
            "InputDataConfig": [
                _channel("train", settings.artifacts_bucket, layout.channel_prefix("train"), train_distribution),
                _channel("validation", settings.artifacts_bucket, layout.channel_prefix("validation"),
                         "FullyReplicated"),
            ],
            "OutputDataConfig": {"S3OutputPath": f"s3://{settings.artifacts_bucket}/{layout.models_prefix}"},
            "ResourceConfig": {
                "InstanceType": settings.instance_type,
                "InstanceCount": settings.instance_count,
                "VolumeSizeInGB": 10,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": settings.instance_count > 1,
        },
        "Tags": tags,
    }
