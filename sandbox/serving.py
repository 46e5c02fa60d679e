"""Inference request and response formats of a Linear Learner endpoint, and InvokeEndpoint errors.

Request formats ("Common data formats for inference" and "Linear learner response formats" in
the SageMaker developer guide): ``text/csv`` (one row of features per line, no label),
``application/json`` (``{"instances": [{"features": [...]}, ...]}`` or the dense form
``{"instances": [{"data": {"features": {"values": [...]}}}]}``), ``application/jsonlines``
(one ``{"features": [...]}`` per line) and ``application/x-recordio-protobuf`` (Float32 dense
tensors). Responses are JSON, ``{"predictions": [{"score": 0.98, "predicted_label": 1}]}``, or
JSON Lines with one prediction per line.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learner_pipeline.recordio import RecordIOError, read_dense_tensor

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
"""InvokeEndpoint rejects request bodies above 6 MB (the SageMaker quota, 6,291,456 bytes)."""

CSV = "text/csv"
JSON = "application/json"
JSON_LINES = "application/jsonlines"
RECORDIO = "application/x-recordio-protobuf"
REQUEST_CONTENT_TYPES = (CSV, JSON, JSON_LINES, RECORDIO)
RESPONSE_CONTENT_TYPES = (JSON, JSON_LINES)


@dataclass
class InvocationError(Exception):
    """An InvokeEndpoint error response: the error code, message, HTTP status and extra fields."""

    code: str
    message: str
    status: int
    fields: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "message": self.message, **self.fields}).encode()


def validation_error(message: str) -> InvocationError:
    return InvocationError("ValidationError", message, 400)


def model_error(*, endpoint_name: str, region: str, account_id: str, original_status: int, original_message: str) -> InvocationError:
    """Build the ModelError SageMaker returns when the container responds with a 4xx or 5xx status."""
    log_group = f"/aws/sagemaker/Endpoints/{endpoint_name}"
    kind = "client" if original_status < 500 else "server"
    message = (
        f'Received {kind} error ({original_status}) from primary with message "{original_message}". '
        f"See https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
        f"group={log_group} in account {account_id} for more information."
    )
    return InvocationError(
        "ModelError",
        message,
        424,
        {
            "OriginalStatusCode": original_status,
            "OriginalMessage": original_message,
            "LogStreamArn": f"arn:aws:logs:{region}:{account_id}:log-group:{log_group}",
        },
    )


class ContainerError(ValueError):
    """The model container rejected the request with the HTTP status ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def media_type(header: str | None, default: str) -> str:
    """Return the media type of a Content-Type or Accept header, without parameters."""
    if not header:
        return default
    return header.split(";", 1)[0].strip().lower()


def parse_features(body: bytes, content_type: str) -> np.ndarray:
    """Decode a request body into an (n, d) float array; raise ContainerError when it is invalid."""
    kind = media_type(content_type, CSV)
    if kind not in REQUEST_CONTENT_TYPES:
        raise ContainerError(415, f"Content type {kind} is not supported: use one of {', '.join(REQUEST_CONTENT_TYPES)}.")
    if not body:
        raise ContainerError(400, "Unable to evaluate payload provided: the request body is empty.")

    try:
        if kind == CSV:
            rows = np.loadtxt(io.StringIO(body.decode("utf-8")), delimiter=",", dtype=np.float64, ndmin=2)
        elif kind == JSON:
            rows = _json_instances(json.loads(body))
        elif kind == JSON_LINES:
            lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
            rows = np.asarray([_instance_features(json.loads(line)) for line in lines], dtype=np.float64)
        else:
            rows, _labels = read_dense_tensor(body)
    except (ValueError, RecordIOError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ContainerError(400, f"Unable to evaluate payload provided: {exc}") from exc

    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise ContainerError(400, f"Unable to evaluate payload provided: expected rows of features, got shape {rows.shape}.")
    if not np.isfinite(rows).all():
        raise ContainerError(400, "Unable to evaluate payload provided: features contain NaN or infinity.")
    return rows


def encode_predictions(scores: np.ndarray, labels: np.ndarray, *, accept: str | None, label_as_float: bool) -> tuple[bytes, str]:
    """Encode predictions as the container does; recordio requests get float labels back."""
    kind = media_type(accept, JSON)
    if kind in ("*/*", ""):
        kind = JSON
    if kind not in RESPONSE_CONTENT_TYPES:
        raise ContainerError(406, f"Accept type {kind} is not supported: use one of {', '.join(RESPONSE_CONTENT_TYPES)}.")

    label_values = labels.astype(float).tolist() if label_as_float else labels.astype(int).tolist()
    predictions = [
        {"score": float(score), "predicted_label": label}
        for score, label in zip(scores.tolist(), label_values, strict=True)
    ]
    if kind == JSON_LINES:
        return "\n".join(json.dumps(item) for item in predictions).encode(), JSON_LINES
    return json.dumps({"predictions": predictions}).encode(), JSON


def _json_instances(document: Any) -> np.ndarray:
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        raise ValueError('expected a JSON object {"instances": [{"features": [...]}, ...]}')
    return np.asarray([_instance_features(instance) for instance in document["instances"]], dtype=np.float64)


def _instance_features(instance: Any) -> list[float]:
    if isinstance(instance, dict) and "features" in instance:
        return list(instance["features"])
    if isinstance(instance, dict) and isinstance(instance.get("data"), dict):
        return list(instance["data"]["features"]["values"])
    raise ValueError(f'an instance must be {{"features": [...]}} or the dense "data" form, got {str(instance)[:80]}')
