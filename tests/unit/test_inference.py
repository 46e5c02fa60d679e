import io
import json
import threading
import time

import numpy as np
import pytest

from learner_pipeline.errors import EvaluationError, InvalidRequestError
from learner_pipeline.inference import (
    CSV,
    MAX_REQUEST_BYTES,
    RECORDIO,
    TransientInvokeError,
    encode_request,
    max_row_bytes,
    pack_rows,
    parse_response,
    plan_batches,
    predict_all,
)
from learner_pipeline.recordio import read_dense_tensor

# The longest "%.9g" output of a float32: sign, 9 significant digits and a 2-digit exponent.
WORST_CSV_VALUE = np.float32(-1.17549435e-38)


def mnist_like(rows: int, seed: int = 0) -> np.ndarray:
    """Return pixel rows in [0, 1] that are 80 % zeros, as MNIST digits roughly are."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (rows, 784)).astype(np.float32) / 255
    pixels[rng.random((rows, 784)) < 0.8] = 0
    return pixels


def decode_rows(body: bytes, content_type: str) -> np.ndarray:
    if content_type == CSV:
        return np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float32, ndmin=2)
    features, _ = read_dense_tensor(body)
    return features


def expected_scores(features: np.ndarray) -> np.ndarray:
    """Score of the fake endpoint: the mean feature value of the row."""
    return features.astype(np.float64).mean(axis=1)


class FakeEndpoint:
    """Stand-in for InvokeEndpoint: decodes the body and scores each row by its mean value.

    ``failures`` maps the row number of a batch's first row (see ``numbered_rows``) to the
    exceptions raised, in order, by the first calls carrying that batch.
    """

    def __init__(self, failures=None, drop_rows=0, label_type=int, delay=0.0):
        self.failures = {key: list(errors) for key, errors in (failures or {}).items()}
        self.drop_rows = drop_rows
        self.label_type = label_type
        self.delay = delay
        self.bodies: list[bytes] = []
        self.first_rows: list[int] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()

    def __call__(self, body: bytes, content_type: str) -> bytes:
        with self.lock:
            self.bodies.append(body)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            features = decode_rows(body, content_type)
            first_row = round(float(features[0, 0]) * 1000)
            with self.lock:
                self.first_rows.append(first_row)
            pending = self.failures.get(first_row)
            if pending:
                raise pending.pop(0)

            scores = expected_scores(features)[self.drop_rows :]
            predictions = [
                {"score": float(score), "predicted_label": self.label_type(score > 0.5)}
                for score in scores
            ]
            return json.dumps({"predictions": predictions}).encode()
        finally:
            with self.lock:
                self.in_flight -= 1


def numbered_rows(rows: int, dim: int = 8) -> np.ndarray:
    """Return rows whose first value is the row number / 1000, so a fake can tell batches apart."""
    features = np.full((rows, dim), 0.25, dtype=np.float32)
    features[:, 0] = np.arange(rows, dtype=np.float32) / 1000
    return features


# A request limit that fits exactly 10 RecordIO rows of numbered_rows' 8 features.
TEN_ROWS = 10 * max_row_bytes(8, RECORDIO)


# --- batch planning -------------------------------------------------------------------------


def test_max_row_bytes_recordio_784():
    # 784 packed float32 values (3,136 bytes) plus protobuf keys and lengths, plus the 8-byte
    # RecordIO header, already a multiple of 4.
    assert max_row_bytes(784, RECORDIO) == 3164


def test_max_row_bytes_csv_bound():
    # Given the longest possible float32 value in every column
    row = np.full((1, 784), WORST_CSV_VALUE, dtype=np.float32)

    # When
    body = encode_request(row, CSV)

    # Then the bound is reached exactly, so it is tight and safe
    assert len(body) == max_row_bytes(784, CSV)


def test_max_row_bytes_csv_covers_extremes():
    extremes = np.array(
        [[np.float32(-3.4028235e38), np.float32(-1.4e-45), np.float32(-1.17549435e-38), -np.inf, np.nan]],
        dtype=np.float32,
    )

    body = encode_request(extremes, CSV)

    assert len(body) <= max_row_bytes(5, CSV)


@pytest.mark.parametrize("content_type", [RECORDIO, CSV])
@pytest.mark.parametrize("rows,dim,max_bytes", [(10, 784, 20_000), (1_000, 8, 5_000), (3, 1, 64)])
def test_plan_batches_fit_and_minimal(content_type, rows, dim, max_bytes):
    # Given worst-case values, so CSV rows take their upper bound
    features = np.full((rows, dim), WORST_CSV_VALUE, dtype=np.float32)

    # When
    batches = plan_batches(rows, dim, content_type, max_bytes)

    # Then every body fits, and one more row would not fit in a full batch
    bodies = [encode_request(features[batch], content_type) for batch in batches]
    assert all(len(body) <= max_bytes for body in bodies)
    assert sum(batch.stop - batch.start for batch in batches) == rows
    assert [batch.start for batch in batches] == [0] + [batch.stop for batch in batches[:-1]]
    full_batch = batches[0].stop - batches[0].start
    if len(batches) > 1:
        one_more = encode_request(features[: full_batch + 1], content_type)
        assert len(one_more) > max_bytes


def test_plan_batches_recordio_6mb_limit():
    # Given the full MNIST test split in RecordIO
    features = mnist_like(10_000)

    # When
    batches = plan_batches(10_000, 784, RECORDIO)

    # Then 6 bodies of at most 1,988 rows each (1,988 x 3,164 bytes <= 6 MiB < 1,989 x 3,164)
    assert len(batches) == 6
    sizes = [len(encode_request(features[batch], RECORDIO)) for batch in batches]
    assert max(sizes) <= MAX_REQUEST_BYTES
    assert len(encode_request(features[:1_989], RECORDIO)) > MAX_REQUEST_BYTES


def test_plan_batches_csv_6mb_limit():
    features = np.full((1_200, 784), WORST_CSV_VALUE, dtype=np.float32)

    batches = plan_batches(1_200, 784, CSV)

    assert len(batches) == 3
    assert max(len(encode_request(features[batch], CSV)) for batch in batches) <= MAX_REQUEST_BYTES
    assert len(encode_request(features[:502], CSV)) > MAX_REQUEST_BYTES


def test_plan_batches_row_too_large():
    with pytest.raises(EvaluationError) as caught:
        plan_batches(5, 784, RECORDIO, max_bytes=1_000)

    assert caught.value.code == "EVALUATION_ROW_TOO_LARGE"


def test_plan_batches_rejects_content_type():
    with pytest.raises(InvalidRequestError) as caught:
        plan_batches(5, 784, "application/json")

    assert caught.value.code == "EVALUATION_BAD_CONTENT_TYPE"


def test_pack_rows_greedy_is_minimal():
    # Given rows of varying sizes
    sizes = np.random.default_rng(3).integers(1, 100, 1_000)

    # When
    batches = pack_rows(sizes, max_bytes=500)

    # Then each batch fits, and each full batch plus the next row would not
    totals = [int(sizes[batch].sum()) for batch in batches]
    assert max(totals) <= 500
    assert sum(batch.stop - batch.start for batch in batches) == 1_000
    for batch, total in zip(batches[:-1], totals[:-1], strict=True):
        assert total + int(sizes[batch.stop]) > 500


def test_pack_rows_row_too_large():
    with pytest.raises(EvaluationError) as caught:
        pack_rows(np.array([10, 600, 10]), max_bytes=500)

    assert caught.value.code == "EVALUATION_ROW_TOO_LARGE"
    assert "Row 1" in caught.value.message


# --- encoding -------------------------------------------------------------------------------


def test_encode_request_csv_round_trip():
    features = np.random.default_rng(4).standard_normal((20, 7)).astype(np.float32)

    body = encode_request(features, CSV)

    decoded = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.float32)
    np.testing.assert_array_equal(decoded, features)


def test_encode_request_csv_layout():
    body = encode_request(np.array([[0.0, 1.0, 0.5], [0.25, 0.0, 1.0]]), CSV)

    assert body == b"0,1,0.5\n0.25,0,1\n"


def test_encode_request_recordio_matches_sdk():
    # Given the SageMaker SDK v2 writer as the reference encoder
    from sagemaker.amazon.common import write_numpy_to_dense_tensor

    features = mnist_like(5)
    expected = io.BytesIO()
    write_numpy_to_dense_tensor(expected, features)

    # When
    body = encode_request(features, RECORDIO)

    # Then
    assert body == expected.getvalue()


def test_encode_request_rejects_1d():
    with pytest.raises(InvalidRequestError) as caught:
        encode_request(np.zeros(5), CSV)

    assert caught.value.code == "EVALUATION_BAD_FEATURES"


# --- response parsing -----------------------------------------------------------------------


def test_parse_response_int_labels():
    body = b'{"predictions": [{"score": 0.98, "predicted_label": 1}, {"score": 0.1, "predicted_label": 0}]}'

    scores, labels = parse_response(body, 2)

    np.testing.assert_allclose(scores, [0.98, 0.1])
    np.testing.assert_array_equal(labels, [1, 0])
    assert labels.dtype == np.int64


def test_parse_response_float_labels():
    # RecordIO requests get labels as floats.
    body = b'{"predictions": [{"score": 0.7, "predicted_label": 1.0}, {"score": 0.2, "predicted_label": 0.0}]}'

    _, labels = parse_response(body, 2)

    np.testing.assert_array_equal(labels, [1, 0])
    assert labels.dtype == np.int64


@pytest.mark.parametrize(
    "body",
    [
        b'{"predictions": [{"score": 0.7, "predicted_label": 1}]}',
        b"not json",
        b'{"scores": []}',
        b'[{"score": 0.7, "predicted_label": 1}, {"score": 0.7, "predicted_label": 1}]',
        b'{"predictions": [{"score": 0.7}, {"score": 0.2}]}',
        b'{"predictions": [{"score": [0.1, 0.9], "predicted_label": 1}, {"score": [0.8, 0.2], "predicted_label": 0}]}',
        b'{"predictions": [{"score": 0.7, "predicted_label": 0.5}, {"score": 0.2, "predicted_label": 0}]}',
        b'{"predictions": [{"score": 0.7, "predicted_label": 3}, {"score": 0.2, "predicted_label": 0}]}',
        b'{"predictions": [{"score": "high", "predicted_label": 1}, {"score": 0.2, "predicted_label": 0}]}',
        b'{"predictions": [1, 0]}',
    ],
    ids=[
        "wrong-count",
        "not-json",
        "no-predictions",
        "bare-list",
        "no-label",
        "multiclass-scores",
        "fractional-label",
        "label-3",
        "text-score",
        "numbers-only",
    ],
)
def test_parse_response_rejects(body):
    with pytest.raises(EvaluationError) as caught:
        parse_response(body, 2)

    assert caught.value.code == "EVALUATION_BAD_RESPONSE"


# --- predict_all ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [RECORDIO, CSV])
def test_predict_all_scores_in_order(content_type):
    # Given 50 rows split into several batches
    features = mnist_like(50, seed=5)
    endpoint = FakeEndpoint(delay=0.01)

    # When
    predictions = predict_all(
        features, endpoint, content_type=content_type, max_bytes=20_000, max_concurrency=3
    )

    # Then every row got its own score, in input order, and the cost adds up
    np.testing.assert_allclose(predictions.scores, expected_scores(features), rtol=1e-6)
    np.testing.assert_array_equal(predictions.labels, (expected_scores(features) > 0.5).astype(int))
    assert predictions.batches == len(endpoint.bodies)
    assert predictions.batches > 1
    assert predictions.calls == predictions.batches
    assert predictions.retries == 0
    assert predictions.bytes_sent == sum(len(body) for body in endpoint.bodies)
    assert all(len(body) <= 20_000 for body in endpoint.bodies)


def test_predict_all_bounded_concurrency():
    features = numbered_rows(40)
    endpoint = FakeEndpoint(delay=0.05)

    predict_all(features, endpoint, content_type=CSV, max_bytes=200, max_concurrency=3)

    assert endpoint.max_in_flight <= 3
    assert endpoint.max_in_flight > 1


def test_predict_all_csv_packs_real_sizes():
    # Given MNIST-like rows, mostly zeros, which encode far below the CSV upper bound
    features = mnist_like(10_000, seed=6)
    endpoint = FakeEndpoint()

    # When, with one call at a time so that the bodies arrive in order
    predictions = predict_all(features, endpoint, content_type=CSV, max_concurrency=1)

    # Then the bodies fit, and fewer requests are needed than the upper-bound plan
    assert max(len(body) for body in endpoint.bodies) <= MAX_REQUEST_BYTES
    assert predictions.batches < len(plan_batches(10_000, 784, CSV))
    assert b"".join(endpoint.bodies) == encode_request(features, CSV)


def test_predict_all_mnist_recordio_calls():
    # Given the full MNIST test split shape in RecordIO
    features = mnist_like(10_000, seed=7)
    endpoint = FakeEndpoint()

    # When
    predictions = predict_all(features, endpoint, content_type=RECORDIO)

    # Then 6 calls of at most 6 MiB each, within the budget of 8
    assert predictions.calls == 6
    assert max(len(body) for body in endpoint.bodies) <= MAX_REQUEST_BYTES
    np.testing.assert_allclose(predictions.scores, expected_scores(features), rtol=1e-6)


def test_predict_all_retries_throttling():
    # Given batches of 10 rows and an endpoint that throttles the second batch twice
    features = numbered_rows(30)
    throttled = TransientInvokeError("ThrottlingException: rate exceeded")
    endpoint = FakeEndpoint(failures={10: [throttled, throttled]})
    sleeps: list[float] = []

    # When
    predictions = predict_all(
        features,
        endpoint,
        content_type=RECORDIO,
        max_bytes=TEN_ROWS,
        max_concurrency=2,
        sleep=sleeps.append,
    )

    # Then the retries are counted and the backoff ceilings double (0.5 s, then 1 s)
    assert predictions.batches == 3
    assert predictions.retries == 2
    assert predictions.calls == 5
    assert endpoint.first_rows.count(10) == 3
    assert len(sleeps) == 2
    assert 0.0 <= sleeps[0] <= 0.5
    assert 0.0 <= sleeps[1] <= 1.0
    np.testing.assert_allclose(predictions.scores, expected_scores(features), rtol=1e-6)


def test_predict_all_attempts_run_out():
    # Given an endpoint that is never ready for the first batch
    features = numbered_rows(5)
    not_ready = TransientInvokeError("ModelNotReadyException")
    endpoint = FakeEndpoint(failures={0.0: [not_ready] * 10})
    sleeps: list[float] = []

    # When
    with pytest.raises(EvaluationError) as caught:
        predict_all(features, endpoint, content_type=CSV, max_attempts=4, sleep=sleeps.append)

    # Then it gave up after 4 calls, naming the batch and the cause
    assert caught.value.code == "EVALUATION_INVOKE_FAILED"
    assert "batch 0" in caught.value.message
    assert "ModelNotReadyException" in caught.value.message
    assert len(endpoint.bodies) == 4
    assert len(sleeps) == 3
    assert caught.value.__cause__ is not_ready


def test_predict_all_permanent_failure():
    # Given batches of 10 rows and an endpoint that rejects the second batch for good
    features = numbered_rows(30)
    rejected = ValueError("ValidationError: unsupported content")
    endpoint = FakeEndpoint(failures={10: [rejected]})
    sleeps: list[float] = []

    # When
    with pytest.raises(EvaluationError) as caught:
        predict_all(
            features,
            endpoint,
            content_type=RECORDIO,
            max_bytes=TEN_ROWS,
            max_concurrency=1,
            sleep=sleeps.append,
        )

    # Then it is not retried and the error names the batch and the cause
    assert caught.value.code == "EVALUATION_INVOKE_FAILED"
    assert "batch 1 (rows 10 to 19" in caught.value.message
    assert "ValidationError" in caught.value.message
    assert caught.value.__cause__ is rejected
    assert sleeps == []
    assert endpoint.first_rows.count(10) == 1


def test_predict_all_wrong_count():
    # Given an endpoint that returns one prediction fewer than the rows it received
    features = numbered_rows(10)
    endpoint = FakeEndpoint(drop_rows=1)

    # When
    with pytest.raises(EvaluationError) as caught:
        predict_all(features, endpoint, content_type=RECORDIO)

    # Then
    assert caught.value.code == "EVALUATION_BAD_RESPONSE"
    assert "batch 0" in caught.value.message
    assert "expected 10 predictions, got 9" in caught.value.message


def test_predict_all_float_labels():
    features = numbered_rows(6)
    endpoint = FakeEndpoint(label_type=float)

    predictions = predict_all(features, endpoint, content_type=RECORDIO)

    assert predictions.labels.dtype == np.int64
    np.testing.assert_array_equal(predictions.labels, np.zeros(6, dtype=np.int64))


def test_predict_all_rejects_zero_concurrency():
    with pytest.raises(InvalidRequestError):
        predict_all(numbered_rows(2), FakeEndpoint(), content_type=CSV, max_concurrency=0)


def test_predictions_cost_summary():
    features = numbered_rows(4)

    predictions = predict_all(features, FakeEndpoint(), content_type=CSV)

    cost = predictions.cost()
    assert cost["rows"] == 4
    assert cost["calls"] == 1
    assert cost["batches"] == 1
    assert cost["bytes_sent"] == len(encode_request(features, CSV))
