"""Read the run ledger table: one run by id, or every run."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from operator_cli.target import CliError, Target

# The fields llp runs shows; "status" is a DynamoDB reserved word, hence the name placeholders.
_SUMMARY_FIELDS = ("run_id", "status", "created_at", "source", "error_code")


def get_run(target: Target, table_name: str, run_id: str) -> dict[str, Any] | None:
    """Return the run's item with numbers as int or float, or None when the ledger has no such run."""
    table = target.resource("dynamodb").Table(table_name)
    try:
        item = table.get_item(Key={"run_id": run_id}, ConsistentRead=True).get("Item")
    except ClientError as exc:
        raise _table_error(exc, table_name) from exc
    return plain(item) if item else None


def scan_runs(target: Target, table_name: str) -> list[dict[str, Any]]:
    """Return the summary fields of every run, reading all scan pages."""
    table = target.resource("dynamodb").Table(table_name)
    names = {f"#f{index}": name for index, name in enumerate(_SUMMARY_FIELDS)}
    arguments: dict[str, Any] = {
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    items: list[dict[str, Any]] = []
    while True:
        try:
            page = table.scan(**arguments)
        except ClientError as exc:
            raise _table_error(exc, table_name) from exc
        items.extend(plain(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def plain(value: Any) -> Any:
    """Convert DynamoDB Decimals to int or float, inside dicts and lists too."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def _table_error(exc: ClientError, table_name: str) -> Exception:
    if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
        return CliError(f"ledger table {table_name} not found: was the stack deleted?")
    return exc
