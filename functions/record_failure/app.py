"""Record failure: a pipeline function that exhausted its retries ends its run FAILED, with the reason."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from learner_pipeline.aws.sagemaker import SageMaker
from learner_pipeline.aws.tracker import RunTracker
from learner_pipeline.config import FailureSettings
from learner_pipeline.workflow import record_function_failure

settings = FailureSettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
tracker = RunTracker(settings)
sagemaker = SageMaker()
# Lambda sends one record per exhausted invocation; its request id identifies it.
idempotency = IdempotencyConfig(event_key_jmespath="detail.requestContext.requestId",
                                raise_on_no_idempotency_key=True)

@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(config=idempotency, persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table))
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    record = EventBridgeEvent(event).detail
    logger.info("trying to record a function failure",
                extra={"function_arn": record.get("requestContext", {}).get("functionArn")})

    result = record_function_failure(record, settings, tracker, sagemaker, settings.ingest_bucket)

    metrics.add_metric(name=result.metric_name, unit=MetricUnit.Count, value=1)
    logger.info("finished recording the function failure", extra=result.to_dict())
    return result.to_dict()
