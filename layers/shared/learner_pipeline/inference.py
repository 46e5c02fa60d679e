"""Batched prediction of a feature matrix through a SageMaker endpoint, without boto3.

The caller passes ``invoke(body, content_type) -> bytes``, a function that performs one
InvokeEndpoint call. This module plans the fewest request bodies that fit the payload limit,
encodes them, calls ``invoke`` with bounded concurrency, retries transient failures with
exponential backoff and full jitter, and parses Linear Learner's JSON responses.
"""

from __future__ import annotations

import io
import json
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from learner_pipeline.errors import EvaluationError, InvalidRequestError
from learner_pipeline.recordio import encode_dense_tensor, encoded_row_size

logger = logging.getLogger(__name__)

CSV = "text/csv"
RECORDIO = "application/x-recordio-protobuf"
CONTENT_TYPES = (CSV, RECORDIO)

# InvokeEndpoint accepts request bodies of at most 6 MB (6,291,456 bytes). The SageMaker Runtime
# API model in botocore 1.43 (data/sagemaker-runtime/2017-05-13/service-2.json) sets BodyBlob
# "max": 6291456.
MAX_REQUEST_BYTES = 6 * 1024 * 1024

# "%.9g" prints every float32 so that it parses back to the same value. Its longest output is
# 15 characters (sign, 9 digits, point, "e-45"), plus one comma or newline after each value.
CSV_VALUE_FORMAT = "%.9g"
CSV_MAX_VALUE_BYTES = 16

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 20.0

Invoke = Callable[[bytes, str], bytes]


class TransientInvokeError(Exception):
    """A failed InvokeEndpoint call worth retrying: throttling, ModelNotReady or an HTTP 5xx."""


@dataclass(frozen=True)
class Predictions:
    """Scores and predicted labels of every row, in input order, with what the calls cost."""

    scores: np.ndarray
    labels: np.ndarray
    batches: int
    calls: int
    bytes_sent: int
    retries: int
    seconds: float

    def cost(self) -> dict[str, Any]:
        """Summarise the endpoint usage as a JSON-ready dict."""
        return {
            "rows": int(self.scores.size),
            "batches": self.batches,
            "calls": self.calls,
            "bytes_sent": self.bytes_sent,
            "retries": self.retries,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class _BatchResult:
    scores: np.ndarray
    labels: np.ndarray
    calls: int
    bytes_sent: int


def max_row_bytes(feature_dim: int, content_type: str) -> int:
    """Return the encoded size of one row: exact for RecordIO, an upper bound for CSV."""
    _check_content_type(content_type)
    if feature_dim < 1:
        raise InvalidRequestError(
            f"The feature dimension must be at least 1, got {feature_dim}.",
            code="EVALUATION_BAD_FEATURES",
        )

    if content_type == RECORDIO:
        return encoded_row_size(feature_dim, np.float32, with_label=False)
    return CSV_MAX_VALUE_BYTES * feature_dim


def plan_batches(
    row_count: int, feature_dim: int, content_type: str, max_bytes: int = MAX_REQUEST_BYTES
) -> list[slice]:
    """Split ``row_count`` rows into the fewest contiguous batches whose bodies fit ``max_bytes``.

    The plan is minimal for RecordIO, whose rows all encode to the same size. For CSV it
    assumes the longest possible row, so it is safe for any data but may use more requests
    than needed: ``predict_all`` packs CSV rows by their real encoded size instead.
    """
    row_bytes = max_row_bytes(feature_dim, content_type)
    rows_per_batch = max_bytes // row_bytes
    if rows_per_batch < 1:
        raise EvaluationError(
            f"One {content_type} row of {feature_dim} features takes up to {row_bytes} bytes, "
            f"more than the {max_bytes}-byte request limit. Reduce the feature dimension.",
            code="EVALUATION_ROW_TOO_LARGE",
        )

    return [
        slice(start, min(start + rows_per_batch, row_count))
        for start in range(0, row_count, rows_per_batch)
    ]


def pack_rows(row_sizes: np.ndarray, max_bytes: int = MAX_REQUEST_BYTES) -> list[slice]:
    """Split rows of the given encoded sizes into the fewest contiguous batches of ``max_bytes``.

    Filling each batch before starting the next is optimal for contiguous batches. The loop
    runs once per batch, and a binary search over the cumulative sizes finds each batch end.
    """
    sizes = np.asarray(row_sizes, dtype=np.int64)
    ends = np.cumsum(sizes)
    batches: list[slice] = []
    start = 0
    offset = 0

    while start < sizes.size:
        stop = int(np.searchsorted(ends, offset + max_bytes, side="right"))
        if stop == start:
            raise EvaluationError(
                f"Row {start} encodes to {int(sizes[start])} bytes, more than the "
                f"{max_bytes}-byte request limit. Reduce the feature dimension.",
                code="EVALUATION_ROW_TOO_LARGE",
            )
        batches.append(slice(start, stop))
        offset = int(ends[stop - 1])
        start = stop

    return batches


def encode_request(features: np.ndarray, content_type: str) -> bytes:
    """Encode rows of features as one request body.

    ``text/csv`` gives one row a line, values separated by commas, no header. RecordIO gives
    one dense Float32 tensor record a row, without labels.
    """
    _check_content_type(content_type)
    values = _as_feature_matrix(features)

    if content_type == RECORDIO:
        return encode_dense_tensor(values)
    return _encode_csv(values)


def parse_response(body: bytes, expected_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Parse a Linear Learner binary classifier response into scores and 0/1 labels.

    The response is ``{"predictions": [{"score": 0.98, "predicted_label": 1}, ...]}``. The label
    is an int for CSV and JSON requests and a float such as 1.0 for RecordIO requests, so both
    are accepted and returned as int64.
    """
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad_response(f"the body is not valid JSON ({exc})") from exc

    predictions = document.get("predictions") if isinstance(document, dict) else None
    if not isinstance(predictions, list):
        raise _bad_response('the body has no "predictions" list')
    if len(predictions) != expected_rows:
        raise _bad_response(f"expected {expected_rows} predictions, got {len(predictions)}")

    try:
        scores = np.array([item["score"] for item in predictions], dtype=np.float64)
        raw_labels = np.array([item["predicted_label"] for item in predictions], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise _bad_response(
            f'each prediction needs a numeric "score" and "predicted_label" ({exc!r})'
        ) from exc

    if scores.shape != (expected_rows,) or raw_labels.shape != (expected_rows,):
        raise _bad_response(
            "scores and labels must be one number per row, as a binary classifier returns"
        )

    labels = raw_labels.astype(np.int64)
    if not np.array_equal(labels, raw_labels) or not np.isin(labels, (0, 1)).all():
        unexpected = np.unique(raw_labels[~np.isin(raw_labels, (0.0, 1.0))])[:5].tolist()
        raise _bad_response(f"predicted labels must be 0 or 1, found {unexpected}")

    return scores, labels


def predict_all(
    features: np.ndarray,
    invoke: Invoke,
    *,
    content_type: str,
    max_bytes: int = MAX_REQUEST_BYTES,
    max_concurrency: int = 4,
    max_attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> Predictions:
    """Predict every row of ``features`` through ``invoke`` in the fewest requests.

    ``invoke`` runs on up to ``max_concurrency`` threads at once, so it must be thread-safe (a
    boto3 client is, a boto3 session is not). It raises TransientInvokeError for failures
    worth retrying and any other exception for permanent ones. Transient failures are retried
    up to ``max_attempts`` calls per batch. Raises EvaluationError with code
    EVALUATION_INVOKE_FAILED, naming the batch and the cause, on a permanent failure or when
    the attempts run out.
    """
    _check_content_type(content_type)
    _check_positive("max_concurrency", max_concurrency)
    _check_positive("max_attempts", max_attempts)
    values = _as_feature_matrix(features)
    started = time.monotonic()

    batches, body_of = _prepare_bodies(values, content_type, max_bytes)
    logger.info(
        "trying to predict the test split",
        extra={"rows": values.shape[0], "batches": len(batches), "content_type": content_type},
    )

    results = _run_batches(
        batches, body_of, invoke, content_type, max_concurrency, max_attempts, sleep
    )

    calls = sum(result.calls for result in results)
    predictions = Predictions(
        scores=np.concatenate([result.scores for result in results]),
        labels=np.concatenate([result.labels for result in results]),
        batches=len(batches),
        calls=calls,
        bytes_sent=sum(result.bytes_sent for result in results),
        retries=calls - len(batches),
        seconds=time.monotonic() - started,
    )
    logger.info("finished predicting the test split", extra=predictions.cost())
    return predictions


def _prepare_bodies(
    values: np.ndarray, content_type: str, max_bytes: int
) -> tuple[list[slice], Callable[[slice], bytes]]:
    """Plan the batches and return a function that builds the body of one of them."""
    if content_type == RECORDIO:
        batches = plan_batches(values.shape[0], values.shape[1], content_type, max_bytes)
        return batches, lambda batch: encode_dense_tensor(values[batch])

    # CSV rows vary in length, so the whole split is encoded once and packed by real size.
    encoded = _encode_csv(values)
    line_ends = np.flatnonzero(np.frombuffer(encoded, dtype=np.uint8) == ord("\n")) + 1
    batches = pack_rows(np.diff(line_ends, prepend=0), max_bytes)
    line_starts = np.concatenate(([0], line_ends))

    def body_of(batch: slice) -> bytes:
        return encoded[int(line_starts[batch.start]) : int(line_starts[batch.stop])]

    return batches, body_of


def _run_batches(
    batches: list[slice],
    body_of: Callable[[slice], bytes],
    invoke: Invoke,
    content_type: str,
    max_concurrency: int,
    max_attempts: int,
    sleep: Callable[[float], None],
) -> list[_BatchResult]:
    """Run every batch on a thread pool and return the results in batch order.

    The first failure cancels the batches not yet started and is raised once the running
    ones finish.
    """
    workers = min(max_concurrency, len(batches))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="invoke") as pool:
        futures: list[Future[_BatchResult]] = [
            pool.submit(
                _predict_batch,
                index,
                batch,
                body_of,
                invoke,
                content_type,
                max_attempts,
                sleep,
            )
            for index, batch in enumerate(batches)
        ]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)

        failed = [future for future in futures if future in done and future.exception()]
        if failed:
            for future in pending:
                future.cancel()
            raise failed[0].exception()  # type: ignore[misc]

    return [future.result() for future in futures]


def _predict_batch(
    index: int,
    batch: slice,
    body_of: Callable[[slice], bytes],
    invoke: Invoke,
    content_type: str,
    max_attempts: int,
    sleep: Callable[[float], None],
) -> _BatchResult:
    body = body_of(batch)
    rows = batch.stop - batch.start
    where = f"batch {index} (rows {batch.start} to {batch.stop - 1}, {len(body)} bytes)"

    for attempt in range(1, max_attempts + 1):
        try:
            response = invoke(body, content_type)
        except TransientInvokeError as exc:
            if attempt == max_attempts:
                raise EvaluationError(
                    f"InvokeEndpoint failed for {where} after {attempt} attempts: {exc}. The "
                    "endpoint kept throttling or failing, so retry the evaluation later or "
                    "lower the concurrency.",
                    code="EVALUATION_INVOKE_FAILED",
                ) from exc

            delay = _backoff_seconds(attempt)
            logger.warning(
                "retrying a transient InvokeEndpoint failure",
                extra={"batch": index, "attempt": attempt, "delay_seconds": delay, "error": str(exc)},
            )
            sleep(delay)
            continue
        except Exception as exc:
            raise EvaluationError(
                f"InvokeEndpoint failed for {where}: {type(exc).__name__}: {exc}. This error is "
                "not retried. Check the endpoint's logs and the request content type.",
                code="EVALUATION_INVOKE_FAILED",
            ) from exc

        try:
            scores, labels = parse_response(response, rows)
        except EvaluationError as exc:
            raise EvaluationError(f"For {where}: {exc.message}", code=exc.code) from exc

        return _BatchResult(scores=scores, labels=labels, calls=attempt, bytes_sent=attempt * len(body))

    raise AssertionError("unreachable: the loop returns or raises on its last attempt")


def _backoff_seconds(attempt: int) -> float:
    """Return a random delay up to 0.5 s * 2 ** (attempt - 1), capped at 20 s ("full jitter")."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    return random.uniform(0.0, ceiling)


def _encode_csv(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savetxt(buffer, values, fmt=CSV_VALUE_FORMAT, delimiter=",")
    return buffer.getvalue()


def _as_feature_matrix(features: np.ndarray) -> np.ndarray:
    values = np.asarray(features, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise InvalidRequestError(
            f"Features must be a non-empty 2-D array (rows, features), got shape {values.shape}.",
            code="EVALUATION_BAD_FEATURES",
        )
    return values


def _check_content_type(content_type: str) -> None:
    if content_type not in CONTENT_TYPES:
        raise InvalidRequestError(
            f"Unsupported request content type {content_type!r}. Use one of {list(CONTENT_TYPES)}.",
            code="EVALUATION_BAD_CONTENT_TYPE",
        )


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise InvalidRequestError(f"{name} must be at least 1, got {value}.", code="INVALID_REQUEST")


def _bad_response(reason: str) -> EvaluationError:
    return EvaluationError(
        f"The endpoint returned an invalid response: {reason}. Check that the endpoint serves a "
        "Linear Learner binary classifier.",
        code="EVALUATION_BAD_RESPONSE",
    )
