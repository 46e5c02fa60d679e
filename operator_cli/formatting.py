"""Text that llp prints for runs: ages, stage lines and the full status of one run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from learner_pipeline.runs import RunLayout, RunStatus

# Statuses in the order a run enters them. The ledger stamps <status lower case>_at on entry.
STAGES = tuple(status.value for status in RunStatus)
_METRICS = ("accuracy", "precision", "recall", "f1")


def parse_time(value: Any) -> datetime | None:
    """Parse a ledger timestamp (ISO 8601 with offset); return None for a missing or invalid one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def format_age(seconds: float) -> str:
    """Format a duration compactly: 42s, 3m05s, 2h07m, 3d04h."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def stages_entered(item: dict[str, Any]) -> list[str]:
    """Return the statuses the run has entered, in order, ending with its current status.

    A stage that began and ended between two reads of the ledger still appears, because its
    ``<status>_at`` stamp stays on the item.
    """
    stages = [stage for stage in STAGES if f"{stage.lower()}_at" in item]
    current = str(item.get("status"))
    if current not in stages:
        stages.append(current)
    return stages


def format_stage_line(elapsed: float, run_id: str, stage: str, item: dict[str, Any]) -> str:
    detail = _stage_detail(stage, item)
    return f"{elapsed:7.1f}s  run {run_id} {stage}" + (f"  {detail}" if detail else "")


def format_item(item: dict[str, Any], *, results_bucket: str | None = None) -> str:
    """Format one run: status, source, stage times, resource names, metrics and error."""
    run_id = str(item["run_id"])
    created = parse_time(item.get("created_at"))
    lines = [f"run {run_id}: {item.get('status', '-')}"]

    source = item.get("source")
    if isinstance(source, dict):
        version = f" (version {source['version_id']})" if source.get("version_id") else ""
        lines.append(f"source: s3://{source.get('bucket')}/{source.get('key')}{version}")

    lines.append("stages:")
    for stage in STAGES:
        entered = parse_time(item.get(f"{stage.lower()}_at"))
        if entered is None:
            continue
        offset = f"+{(entered - created).total_seconds():.1f}s" if created else ""
        lines.append(f"  {stage:10}  {entered.isoformat(timespec='seconds')}  {offset}".rstrip())

    for label, field in (
        ("tuning job", "tuning_job_name"),
        ("best training job", "best_training_job"),
        ("model", "model_name"),
        ("endpoint config", "endpoint_config_name"),
        ("endpoint", "endpoint_name"),
    ):
        if item.get(field):
            lines.append(f"{label}: {item[field]}")
    if item.get("objective_metric") and item.get("objective_value") is not None:
        lines.append(f"objective: {item['objective_metric']} = {_number(item['objective_value'])}")

    metrics = item.get("metrics")
    if isinstance(metrics, dict):
        shown = [f"{name} {_number(metrics[name])}" for name in _METRICS if name in metrics]
        if shown:
            lines.append("metrics: " + ", ".join(shown))

    if item.get("error_code") or item.get("error_message"):
        lines.append(
            f"error: {item.get('error_code') or 'UNKNOWN'}: {item.get('error_message') or 'no message recorded'}"
        )
    if results_bucket and item.get("status") in (RunStatus.SUCCEEDED, RunStatus.FAILED):
        lines.append(f"results: s3://{results_bucket}/{RunLayout(run_id).root}")
    return "\n".join(lines)


def _stage_detail(stage: str, item: dict[str, Any]) -> str:
    if stage == RunStatus.TUNING and item.get("tuning_job_name"):
        return f"tuning job {item['tuning_job_name']}"
    if stage == RunStatus.DEPLOYING and item.get("endpoint_name"):
        return f"endpoint {item['endpoint_name']} from {item.get('best_training_job', '-')}"
    if stage == RunStatus.FAILED:
        return f"{item.get('error_code') or 'UNKNOWN'}: {item.get('error_message') or 'no message recorded'}"
    return ""


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
