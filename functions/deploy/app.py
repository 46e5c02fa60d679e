"""Deploy: a finished tuning job either deploys its best model to an endpoint or fails the run."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from learner_pipeline.aws.sagemaker import SageMaker
from learner_pipeline.aws.tracker import RunTracker
from learner_pipeline.config import DeploySettings
from learner_pipeline.workflow import deploy_best_model

settings = DeploySettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
tracker = RunTracker(settings)
sagemaker = SageMaker()
# SageMaker may send several events for one state change: the job name and status identify it.
idempotency = IdempotencyConfig(
    event_key_jmespath="detail.[HyperParameterTuningJobName, HyperParameterTuningJobStatus]",
    raise_on_no_idempotency_key=True)


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(config=idempotency, persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table))
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    detail = EventBridgeEvent(event).detail
    name = detail["HyperParameterTuningJobName"]
    status = detail["HyperParameterTuningJobStatus"]
    logger.info("trying to deploy", extra={"tuning_job_name": name, "tuning_job_status": status})

    result = deploy_best_model(name, status, detail.get("FailureReason"), settings, tracker, sagemaker)

    metrics.add_metric(name=result.metric_name, unit=MetricUnit.Count, value=1)
    logger.info("finished deploying", extra=result.to_dict())
    return result.to_dict()
