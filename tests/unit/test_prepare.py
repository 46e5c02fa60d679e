"""prepare_run and its pieces on small in-memory datasets, with a sink that records the bodies."""

from __future__ import annotations

import io
import os
import weakref

import numpy as np
import pytest

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from sagemaker.amazon.common import write_numpy_to_dense_tensor as sdk_write  # noqa: E402

from learner_pipeline.dataset import Dataset, Split  # noqa: E402
from learner_pipeline.errors import InvalidDatasetError  # noqa: E402
from learner_pipeline.prepare import PrepareOptions, npy_buffer, prepare_run, shard_bounds  # noqa: E402
from learner_pipeline.recordio import encoded_row_size, read_dense_tensor  # noqa: E402
from learner_pipeline.runs import RunLayout  # noqa: E402

FEATURES = 12
ROW_BYTES = encoded_row_size(FEATURES, np.float32, with_label=True)


def make_split(name: str, rows: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    images = rng.random((rows, FEATURES), dtype=np.float32)
    labels = np.arange(rows, dtype=np.int64) % 3
    return Split(name=name, images=images, labels=labels)


def make_dataset(train_rows: int = 30, validation_rows: int = 9, test_rows: int = 6) -> Dataset:
    return Dataset(
        train=make_split("train", train_rows, 1),
        validation=make_split("validation", validation_rows, 2),
        test=make_split("test", test_rows, 3),
        feature_dim=FEATURES,
        image_shape=None,
        notes=("a note",),
    )


class RecordingSink:
    """Keeps a copy of every body, as an uploading sink would send it."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}

    def __call__(self, key: str, body: memoryview, content_type: str) -> None:
        self.bodies[key] = bytes(body)
        self.content_types[key] = content_type


def sdk_encode(features: np.ndarray, labels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sdk_write(buffer, features, labels)
    return buffer.getvalue()


def run(dataset: Dataset, shard_bytes: int = 1 << 20, positive_label: int = 0,
        sink: RecordingSink | None = None) -> tuple[dict, RecordingSink]:
    sink = sink or RecordingSink()
    options = PrepareOptions(positive_label=positive_label, shard_bytes=shard_bytes)
    manifest = prepare_run(dataset, RunLayout("run-1"), options, sink, source={"key": "upload.pkl.gz"})
    return manifest, sink


# --- shard_bounds -------------------------------------------------------------------------------


def test_shard_bounds_cover_rows() -> None:
    bounds = shard_bounds(row_count=10, row_bytes=100, shard_bytes=350)

    assert bounds[0][0] == 0
    assert bounds[-1][1] == 10
    assert all(stop == next_start for (_, stop), (next_start, _) in zip(bounds, bounds[1:], strict=False))


def test_shard_bounds_respect_size() -> None:
    bounds = shard_bounds(row_count=10, row_bytes=100, shard_bytes=350)

    assert max((stop - start) * 100 for start, stop in bounds) <= 350


def test_shard_bounds_min_shards() -> None:
    assert len(shard_bounds(row_count=10, row_bytes=1, shard_bytes=1 << 20, min_shards=4)) == 4


def test_shard_bounds_min_shards_above_rows() -> None:
    assert len(shard_bounds(row_count=2, row_bytes=1, shard_bytes=1 << 20, min_shards=4)) == 2


def test_shard_bounds_row_above_shard_size() -> None:
    # A row larger than a shard still gets a shard of its own.
    assert shard_bounds(row_count=3, row_bytes=500, shard_bytes=100) == [(0, 1), (1, 2), (2, 3)]


# --- RecordIO shards --------------------------------------------------------------------------------


def test_shards_match_sdk_writer() -> None:
    # Given shards of about 7 rows
    dataset = make_dataset()
    manifest, sink = run(dataset, shard_bytes=7 * ROW_BYTES)

    # When the train shards are joined
    keys = manifest["channels"]["train"]["shards"]
    joined = b"".join(sink.bodies[key] for key in keys)

    # Then they are the SDK's encoding of the images and 0/1 float labels
    labels = (dataset.train.labels == 0).astype(np.float32)
    assert len(keys) == 5
    assert joined == sdk_encode(dataset.train.images, labels)


def test_shards_read_back() -> None:
    dataset = make_dataset()
    manifest, sink = run(dataset, positive_label=2)

    key = manifest["channels"]["validation"]["shards"][0]
    features, labels = read_dense_tensor(sink.bodies[key])

    assert np.array_equal(features, dataset.validation.images)
    assert labels is not None
    assert labels.tolist() == [float(label == 2) for label in dataset.validation.labels]


def test_shards_content_type() -> None:
    manifest, sink = run(make_dataset())

    key = manifest["channels"]["train"]["shards"][0]

    assert sink.content_types[key] == "application/x-recordio-protobuf"


def test_shard_not_kept_after_sink() -> None:
    # Given a sink that watches the numpy array behind each body
    alive: list[weakref.ref] = []

    def sink(key: str, body: memoryview, content_type: str) -> None:
        alive.append(weakref.ref(body.obj))
        assert sum(ref() is not None for ref in alive) == 1

    # When several shards are written, Then prepare keeps no earlier body
    options = PrepareOptions(positive_label=0, shard_bytes=5 * ROW_BYTES)
    prepare_run(make_dataset(), RunLayout("run-1"), options, sink, source={})

    assert len(alive) > 3


def test_train_shards_per_instance() -> None:
    options = PrepareOptions(positive_label=0, shard_bytes=1 << 20, training_instance_count=3)
    sink = RecordingSink()

    manifest = prepare_run(make_dataset(), RunLayout("run-1"), options, sink, source={})

    assert len(manifest["channels"]["train"]["shards"]) == 3
    assert len(manifest["channels"]["validation"]["shards"]) == 1


# --- test split and manifest ------------------------------------------------------------------------


def test_test_split_loads_with_numpy() -> None:
    dataset = make_dataset()
    manifest, sink = run(dataset)

    features = np.load(io.BytesIO(sink.bodies[manifest["test"]["features"]]), allow_pickle=False)
    labels = np.load(io.BytesIO(sink.bodies[manifest["test"]["labels"]]), allow_pickle=False)

    assert np.array_equal(features, dataset.test.images)
    assert features.dtype == np.float32
    assert np.array_equal(labels, dataset.test.labels)
    assert labels.dtype == np.int64


def test_manifest_counts() -> None:
    manifest, _ = run(make_dataset(30, 9, 6))

    assert manifest["rows"] == {"train": 30, "validation": 9, "test": 6}
    assert manifest["positives"] == {"train": 10, "validation": 3, "test": 2}
    assert manifest["feature_dim"] == FEATURES
    assert manifest["notes"] == ["a note"]


def test_missing_positive_writes_nothing() -> None:
    sink = RecordingSink()

    with pytest.raises(InvalidDatasetError) as error:
        run(make_dataset(), positive_label=7, sink=sink)

    assert error.value.code == "DATASET_NO_POSITIVE"
    assert sink.bodies == {}


# --- npy_buffer -----------------------------------------------------------------------------------

NPY_CASES = {
    "float32 matrix": np.arange(12, dtype=np.float32).reshape(3, 4),
    "int64 vector": np.arange(5, dtype=np.int64),
    "empty rows": np.zeros((0, 784), dtype=np.float32),
    "fortran order": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    "column slice": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],
    "zero-d": np.array(3.5, dtype=np.float32),
    "big-endian": np.arange(4, dtype=">i4"),
    "structured": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8")]),
}


@pytest.mark.parametrize("array", NPY_CASES.values(), ids=NPY_CASES.keys())
def test_npy_buffer_matches_np_save(array: np.ndarray) -> None:
    expected = io.BytesIO()
    np.save(expected, array, allow_pickle=False)

    assert bytes(npy_buffer(array)) == expected.getvalue()


def test_npy_buffer_rejects_objects() -> None:
    with pytest.raises(ValueError, match="without pickle"):
        npy_buffer(np.array([{"a": 1}], dtype=object))


def test_buffer_reader_reads_and_seeks():
    from learner_pipeline.aws.storage import BufferReader

    data = np.arange(1000, dtype=np.uint8)
    reader = BufferReader(memoryview(data))

    assert reader.read(10) == bytes(range(10))
    assert reader.seek(-5, 2) == 995
    assert reader.read() == bytes(data[995:])
    assert reader.read(3) == b""
    reader.seek(0)
    assert reader.read() == data.tobytes()
