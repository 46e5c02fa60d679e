"""Run bookkeeping shared by the handlers: the ledger is the truth, status.json and SNS follow it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from learner_pipeline.aws.ledger import Ledger
from learner_pipeline.aws import notify
from learner_pipeline.aws.storage import Storage
from learner_pipeline.config import CommonSettings
from learner_pipeline.errors import PipelineError
from learner_pipeline.runs import RunStatus

logger = Logger(child=True)


class RunTracker:
    def __init__(self, settings: CommonSettings, ledger: Ledger | None = None, storage: Storage | None = None) -> None:
        self.settings = settings
        self.ledger = ledger or Ledger(settings.ledger_table)
        self.storage = storage or Storage()

    def get(self, run_id: str) -> dict[str, Any] | None:
        return self.ledger.get(run_id)

    def advance(self, run_id: str, status: RunStatus, fields: dict[str, Any] | None = None) -> bool:
        moved = self.ledger.advance(run_id, status, fields)
        if moved:
            self.write_status(run_id)
        else:
            logger.info("run not advanced: it is not in a predecessor state", extra={"target_status": status.value})
        return moved

    def fail(self, run_id: str, error: PipelineError, fields: dict[str, Any] | None = None) -> bool:
        """End the run FAILED and tell its owner, once. Return False when it had already ended."""
        logger.warning("run failed", extra={"error_code": error.code, "error_message": error.message})
        failed = self.ledger.fail(run_id, error, fields)
        if failed:
            self._publish(run_id)
        return failed

    def succeed(self, run_id: str, fields: dict[str, Any] | None = None) -> bool:
        succeeded = self.ledger.advance(run_id, RunStatus.SUCCEEDED, fields)
        if succeeded:
            self._publish(run_id)
        return succeeded

    def write_status(self, run_id: str) -> None:
        run = self.ledger.get(run_id)
        if run:
            notify.write_status(run, results_bucket=self.settings.results_bucket, storage=self.storage)

    def _publish(self, run_id: str) -> None:
        run = self.ledger.get(run_id)
        if run:
            notify.publish_outcome(run, results_bucket=self.settings.results_bucket,
                            topic_arn=self.settings.runs_topic_arn, storage=self.storage)
