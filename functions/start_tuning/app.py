"""Start tuning: a run manifest in the artifacts bucket starts the run's hyperparameter tuning job."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from learner_pipeline.aws.sagemaker import SageMaker
from learner_pipeline.aws.storage import Storage
from learner_pipeline.aws.tracker import RunTracker
from learner_pipeline.config import TuningSettings
from learner_pipeline.workflow import start_tuning

settings = TuningSettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
storage = Storage()
tracker = RunTracker(settings, storage=storage)
sagemaker = SageMaker()
# The manifest is written once per run; its key and ETag identify the event whatever its delivery.
idempotency = IdempotencyConfig(event_key_jmespath="detail.[bucket.name, object.key, object.etag]",
                                raise_on_no_idempotency_key=True)


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(config=idempotency, persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table))
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    manifest = S3EventBridgeNotificationEvent(event).detail
    logger.info("trying to start tuning", extra={"key": manifest.object.key})

    result = start_tuning(manifest.bucket.name, manifest.object.key, settings, tracker, storage, sagemaker)

    metrics.add_metric(name=result.metric_name, unit=MetricUnit.Count, value=1)
    logger.info("finished starting tuning", extra=result.to_dict())
    return result.to_dict()
