"""Unit tests of learner_pipeline.dataset: loading, conversions, limits and the class checks."""

import gzip
import io
import pickle
import struct
import time

import numpy as np
import pytest

from learner_pipeline.dataset import (
    Dataset,
    LoadLimits,
    Split,
    binary_labels,
    check_classes,
    load_dataset,
)
from learner_pipeline.errors import InvalidDatasetError, InvalidRequestError

MIB = 1 << 20
GENEROUS = LoadLimits(max_compressed_bytes=64 * MIB, max_decompressed_bytes=64 * MIB, deadline=None)


def make_splits(rows=(40, 12, 12), features=784, seed=3):
    rng = np.random.default_rng(seed)
    return tuple(
        (rng.random((count, features), dtype=np.float32), np.arange(count, dtype=np.int64) % 10)
        for count in rows
    )


def gzipped(obj, protocol=4) -> bytes:
    return gzip.compress(pickle.dumps(obj, protocol=protocol), mtime=0)


def load(data: bytes, limits: LoadLimits = GENEROUS) -> Dataset:
    return load_dataset(io.BytesIO(data), limits)


def load_error(data: bytes, limits: LoadLimits = GENEROUS) -> InvalidDatasetError:
    with pytest.raises(InvalidDatasetError) as caught:
        load(data, limits)
    return caught.value


class TrickleStream:
    """Non-seekable stream that returns at most ``step`` bytes per read, after ``delay`` seconds."""

    def __init__(self, data: bytes, step: int = 7, delay: float = 0.0) -> None:
        self._data = io.BytesIO(data)
        self._step = step
        self._delay = delay
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        time.sleep(self._delay)
        limit = self._step if size < 0 else min(size, self._step)
        return self._data.read(limit)


# --- loading valid files ---------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_load_every_protocol(protocol):
    # Given the tutorial layout pickled with this protocol
    splits = make_splits()

    # When it is loaded
    dataset = load(gzipped(splits, protocol))

    # Then every split comes back unchanged
    for split, (images, labels) in zip(dataset.splits, splits, strict=True):
        assert split.images.dtype == np.float32
        assert split.labels.dtype == np.int64
        assert np.array_equal(split.images, images)
        assert np.array_equal(split.labels, labels)


def test_load_names_and_dimensions():
    dataset = load(gzipped(make_splits()))

    assert [split.name for split in dataset.splits] == ["train", "validation", "test"]
    assert dataset.train.images.shape == (40, 784)
    assert dataset.validation.labels.shape == (12,)
    assert dataset.feature_dim == 784
    assert dataset.image_shape == (28, 28)
    assert dataset.notes == ()


def test_load_non_square_features():
    dataset = load(gzipped(make_splits(features=50)))

    assert dataset.feature_dim == 50
    assert dataset.image_shape is None


def test_load_uint8_pixels_scaled():
    # Given uint8 pixels covering 0 and 255
    splits = make_splits()
    pixels = tuple(((images * 255).astype(np.uint8), labels) for images, labels in splits)
    pixels[0][0][0, :2] = (0, 255)

    dataset = load(gzipped(pixels))

    assert dataset.train.images.dtype == np.float32
    assert dataset.train.images[0, 0] == 0.0
    assert dataset.train.images[0, 1] == 1.0
    assert np.allclose(dataset.test.images, pixels[2][0] / 255.0, atol=1e-7)
    assert "integer pixels in [0, 255] were scaled to [0, 1]" in dataset.notes


def test_load_integer_features_not_scaled():
    # Given integer features outside the pixel range
    splits = make_splits(features=4)
    counts = tuple(((images * 1000).astype(np.int32), labels) for images, labels in splits)

    dataset = load(gzipped(counts))

    assert np.array_equal(dataset.train.images, counts[0][0].astype(np.float32))
    assert any("without scaling" in note for note in dataset.notes)


def test_load_float64_cast():
    splits = make_splits()
    doubles = tuple((images.astype(np.float64), labels) for images, labels in splits)

    dataset = load(gzipped(doubles))

    assert dataset.train.images.dtype == np.float32
    assert np.array_equal(dataset.train.images, splits[0][0])
    assert "float64 features were cast to float32" in dataset.notes


def test_load_3d_images_flattened():
    splits = make_splits(features=12 * 10)
    cubes = tuple((images.reshape(-1, 12, 10), labels) for images, labels in splits)

    dataset = load(gzipped(cubes))

    assert dataset.train.images.shape == (40, 120)
    assert dataset.image_shape == (12, 10)
    assert np.array_equal(dataset.validation.images, splits[1][0])


def test_load_labels_above_nine():
    splits = make_splits()
    many_classes = ((splits[0][0], splits[0][1] + 20), splits[1], splits[2])

    dataset = load(gzipped(many_classes))

    assert dataset.train.labels.max() == 29


def test_load_short_reads_non_seekable():
    # Given a stream that returns 7 bytes per read and cannot seek, like a network body
    stream = TrickleStream(gzipped(make_splits(rows=(5, 3, 3))), step=7)

    dataset = load_dataset(stream, GENEROUS)

    assert dataset.train.images.shape == (5, 784)
    assert stream.reads > 100


# --- errors with their location --------------------------------------------------------------


def test_error_nan_names_split_and_row():
    splits = make_splits()
    splits[1][0][9, 3] = np.nan

    error = load_error(gzipped(splits))

    assert error.code == "DATASET_NOT_FINITE"
    assert "validation" in error.message
    assert "row 9, column 3" in error.message


def test_error_label_names_split_and_index():
    splits = make_splits()
    splits[2][1][4] = -3

    error = load_error(gzipped(splits))

    assert error.code == "DATASET_BAD_LABELS"
    assert "test labels" in error.message
    assert "-3 at index 4" in error.message


def test_error_count_names_both_counts():
    splits = make_splits()
    short = ((splits[0][0], splits[0][1][:-2]), splits[1], splits[2])

    error = load_error(gzipped(short))

    assert error.code == "DATASET_COUNT_MISMATCH"
    assert "40 images but 38 labels" in error.message


def test_error_forbidden_names_global():
    payload = b"\x80\x02csubprocess\nPopen\nq\x00."

    error = load_error(gzip.compress(payload))

    assert error.code == "DATASET_FORBIDDEN_OBJECT"
    assert "subprocess.Popen" in error.message


def test_error_trailing_pickle():
    # Given a valid dataset followed by a second pickle
    payload = pickle.dumps(make_splits(), protocol=4) + pickle.dumps(None)

    error = load_error(gzip.compress(payload))

    assert error.code == "DATASET_BAD_STRUCTURE"
    assert "bytes follow the end of the pickle" in error.message


# --- limits ----------------------------------------------------------------------------------


def test_limit_gzip_bomb():
    # Given 8 MiB of one pickle text line that compresses to a few KiB
    bomb = gzip.compress(b"V" + b"a" * (8 * MIB))
    limits = LoadLimits(max_compressed_bytes=MIB, max_decompressed_bytes=MIB, deadline=None)

    error = load_error(bomb, limits)

    assert len(bomb) < 64 * 1024
    assert error.code == "DATASET_TOO_LARGE"


def test_limit_declared_length():
    # Given a pickle that declares a 1 TiB bytes object
    payload = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + bytes(1024)

    error = load_error(gzip.compress(payload))

    assert error.code == "DATASET_TOO_LARGE"


def test_limit_decompressed_boundary():
    # Given a file whose decompressed size is exactly known
    payload = pickle.dumps(make_splits(), protocol=4)
    data = gzip.compress(payload)
    at_size = LoadLimits(10 * MIB, len(payload), None)
    below_size = LoadLimits(10 * MIB, len(payload) - 1, None)

    assert load(data, at_size).train.images.shape == (40, 784)
    assert load_error(data, below_size).code == "DATASET_TOO_LARGE"


def test_limit_compressed_boundary():
    data = gzipped(make_splits())
    at_size = LoadLimits(len(data), 64 * MIB, None)
    below_size = LoadLimits(len(data) - 1, 64 * MIB, None)

    assert load(data, at_size).train.images.shape == (40, 784)
    assert load_error(data, below_size).code == "DATASET_TOO_LARGE"


def test_limit_deadline_passed():
    limits = LoadLimits(64 * MIB, 64 * MIB, deadline=time.monotonic() - 1)

    error = load_error(gzipped(make_splits()), limits)

    assert error.code == "DATASET_TIMEOUT"


def test_limit_deadline_slow_stream():
    # Given a stream that needs about 200 reads of 10 ms each, and a 0.3 s deadline
    data = gzipped(make_splits(rows=(4, 2, 2), features=784))
    stream = TrickleStream(data, step=max(1, len(data) // 200), delay=0.01)
    started = time.monotonic()
    limits = LoadLimits(64 * MIB, 64 * MIB, deadline=started + 0.3)

    with pytest.raises(InvalidDatasetError) as caught:
        load_dataset(stream, limits)

    assert caught.value.code == "DATASET_TIMEOUT"
    assert time.monotonic() - started < 1.0


def test_limits_reject_non_positive():
    with pytest.raises(ValueError):
        LoadLimits(max_compressed_bytes=0, max_decompressed_bytes=MIB, deadline=None)


# --- binary labels and class checks ----------------------------------------------------------


def test_binary_labels_values():
    labels = np.array([0, 3, 0, 9], dtype=np.int64)

    result = binary_labels(labels, positive_label=0)

    assert result.dtype == np.float32
    assert result.tolist() == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("label", [-1, True, 1.0, "0"])
def test_binary_labels_invalid_positive(label):
    with pytest.raises(InvalidRequestError):
        binary_labels(np.array([0, 1]), positive_label=label)


def dataset_with_labels(train, validation, test=(0, 1)) -> Dataset:
    def split(name, labels):
        values = np.asarray(labels, dtype=np.int64)
        return Split(name, np.zeros((values.size, 4), np.float32), values)

    return Dataset(
        train=split("train", train),
        validation=split("validation", validation),
        test=split("test", test),
        feature_dim=4,
        image_shape=(2, 2),
        notes=(),
    )


def test_check_classes_passes():
    check_classes(dataset_with_labels([0, 1, 2], [3, 0], test=[5, 5]), positive_label=0)


def test_check_classes_no_positive():
    with pytest.raises(InvalidDatasetError) as caught:
        check_classes(dataset_with_labels([1, 2, 3], [0, 1]), positive_label=0)

    assert caught.value.code == "DATASET_NO_POSITIVE"
    assert "train split" in caught.value.message
    assert "1, 2, 3" in caught.value.message


def test_check_classes_no_negative():
    with pytest.raises(InvalidDatasetError) as caught:
        check_classes(dataset_with_labels([7, 1], [7, 7]), positive_label=7)

    assert caught.value.code == "DATASET_NO_NEGATIVE"
    assert "validation split" in caught.value.message
