"""Domain errors. Each carries a stable code that reaches the run's status, the ledger and SNS."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of every error that ends a run FAILED with a code and an actionable message."""

    code = "PIPELINE_ERROR"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidDatasetError(PipelineError):
    """The uploaded file is not a usable (train, validation, test) dataset. Codes start with DATASET_."""

    code = "DATASET_INVALID"


class InvalidRequestError(PipelineError):
    """An event or a configuration value is not what the pipeline expects."""

    code = "INVALID_REQUEST"


class TuningFailedError(PipelineError):
    """SageMaker reported the tuning job as Failed or Stopped."""

    code = "TUNING_FAILED"


class EndpointFailedError(PipelineError):
    """SageMaker reported the endpoint as FAILED."""

    code = "ENDPOINT_FAILED"


class EvaluationError(PipelineError):
    """Predicting the test split through the endpoint failed."""

    code = "EVALUATION_FAILED"
