"""The run ledger in DynamoDB: one item per run, moved forward only by conditional writes."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr
from botocore.exceptions import ClientError

from learner_pipeline.aws.clients import resource
from learner_pipeline.errors import PipelineError
from learner_pipeline.runs import ALLOWED_PREDECESSORS, RunStatus


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _plain(value: Any) -> Any:
    """Convert DynamoDB Decimals back to int or float so items serialise as JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Ledger:
    def __init__(self, table_name: str, table: Any = None) -> None:
        self._table = table if table is not None else resource("dynamodb").Table(table_name)

    def get(self, run_id: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def start(self, run_id: str, fields: dict[str, Any]) -> bool:
        """Create the run as PREPARING. Return False when the run already exists (a repeated event)."""
        now = _now()
        item = {"run_id": run_id, "status": RunStatus.PREPARING.value, "created_at": now,
                "updated_at": now, "preparing_at": now, **fields}
        try:
            self._table.put_item(Item=item, ConditionExpression=Attr("run_id").not_exists())
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def advance(self, run_id: str, status: RunStatus, fields: dict[str, Any] | None = None) -> bool:
        """Move the run to status if it is in an allowed predecessor. Return False otherwise."""
        now = _now()
        values = {"status": status.value, "updated_at": now, f"{status.value.lower()}_at": now, **(fields or {})}
        predecessors = [state.value for state in ALLOWED_PREDECESSORS[status]]
        return self._update(run_id, values, Attr("status").is_in(predecessors))

    def fail(self, run_id: str, error: PipelineError, fields: dict[str, Any] | None = None) -> bool:
        """End the run FAILED with the error's code and message, unless it already ended."""
        extra = {"error_code": error.code, "error_message": error.message, **(fields or {})}
        return self.advance(run_id, RunStatus.FAILED, extra)

    def record(self, run_id: str, fields: dict[str, Any]) -> None:
        """Store fields on an existing run without changing its status."""
        self._update(run_id, {"updated_at": _now(), **fields}, Attr("run_id").exists())

    def _update(self, run_id: str, values: dict[str, Any], condition: Any) -> bool:
        names = {f"#field{index}": name for index, name in enumerate(values)}
        placeholders = {f":value{index}": _dynamo_value(value) for index, value in enumerate(values.values())}
        assignments = ", ".join(f"#field{index} = :value{index}" for index in range(len(values)))
        try:
            self._table.update_item(
                Key={"run_id": run_id},
                UpdateExpression=f"SET {assignments}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=placeholders,
                ConditionExpression=condition,
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True


def _dynamo_value(value: Any) -> Any:
    """Convert floats to Decimal, which the DynamoDB resource layer requires."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _dynamo_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_dynamo_value(item) for item in value]
    return value
