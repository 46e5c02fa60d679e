"""Evaluate: an endpoint in service predicts the test split; results go to S3 and the endpoint goes away."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig, idempotent
from aws_lambda_powertools.utilities.typing import LambdaContext

from learner_pipeline.aws.sagemaker import SageMaker
from learner_pipeline.aws.storage import Storage
from learner_pipeline.aws.tracker import RunTracker
from learner_pipeline.config import EvaluateSettings
from learner_pipeline.workflow import evaluate_endpoint

settings = EvaluateSettings.from_env()
logger = Logger()
tracer = Tracer()
metrics = Metrics()
storage = Storage()
tracker = RunTracker(settings, storage=storage)
sagemaker = SageMaker()
# EventBridge spells the status IN_SERVICE; the endpoint name and status identify one state change.
idempotency = IdempotencyConfig(event_key_jmespath="detail.[EndpointName, EndpointStatus]",
                                raise_on_no_idempotency_key=True)


@logger.inject_lambda_context(log_event=True, clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
@idempotent(config=idempotency, persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table))
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    detail = EventBridgeEvent(event).detail
    name = detail["EndpointName"]
    status = detail["EndpointStatus"]
    logger.info("trying to evaluate", extra={"endpoint_name": name, "endpoint_status": status})

    result = evaluate_endpoint(name, status, detail.get("FailureReason"), settings, tracker, storage, sagemaker)

    metrics.add_metric(name=result.metric_name, unit=MetricUnit.Count, value=1)
    logger.info("finished evaluating", extra=result.to_dict())
    return result.to_dict()
