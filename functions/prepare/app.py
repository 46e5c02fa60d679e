"""Prepare: an upload in the ingest bucket becomes RecordIO shards, a test split and a run manifest."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3EventBridgeNotificationEvent
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from learner_pipeline.aws.storage import Storage
from learner_pipeline.aws.tracker import RunTracker
from learner_pipeline.config import PrepareSettings
from learner_pipeline.workflow import prepare_upload

settings = PrepareSettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
storage = Storage()
tracker = RunTracker(settings, storage=storage)
# One upload is one object version: repeated deliveries of its event share this key.
idempotency = IdempotencyConfig(event_key_jmespath='detail.[bucket.name, object.key, object."version-id", object.etag]',
                                raise_on_no_idempotency_key=True)


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(config=idempotency, persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table))
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    upload = S3EventBridgeNotificationEvent(event).detail
    # NOTE: the data class URL-decodes object.key, which turns a literal "+" into a space. The raw
    # key goes to the workflow, which tries it as sent and then decoded.
    raw_key = event["detail"]["object"]["key"]
    logger.info("trying to prepare an upload", extra={"bucket": upload.bucket.name, "key": raw_key})

    result = prepare_upload(upload.bucket.name, raw_key, upload.object.version_id, upload.object.etag,
                            settings, tracker, storage, context.get_remaining_time_in_millis() / 1000)

    metrics.add_metric(name=result.metric_name, unit=MetricUnit.Count, value=1)
    logger.info("finished preparing the upload", extra=result.to_dict())
    return result.to_dict()
