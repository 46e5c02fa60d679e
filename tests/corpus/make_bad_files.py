"""Build dataset files that must be rejected, each with its expected error code, and valid ones.

``build_corpus(directory)`` writes one or more files per ``DATASET_*`` code that a file alone can
cause; ``build_valid_variants(directory)`` writes files in every encoding the loader accepts.
All data is seeded, so the files are the same on every run. Only numpy and the standard
library are needed, so the prepare handler and the sandbox tests can build the same corpus.

Run ``python -m tests.corpus.make_bad_files DIRECTORY`` to write the files and list them.
"""

from __future__ import annotations

import gzip
import os
import pickle
import shlex
import struct
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np

# The expected codes below assume a loader configured with caps at or above these values for
# the valid files, and below BOMB_BYTES for the decompression bombs.
CORPUS_MAX_COMPRESSED_BYTES = 8 << 20
CORPUS_MAX_DECOMPRESSED_BYTES = 32 << 20
BOMB_BYTES = 64 << 20

# Labels are digits. The class checks (DATASET_NO_POSITIVE, DATASET_NO_NEGATIVE) assume this
# positive label, as in "is this digit a 0?".
CORPUS_POSITIVE_LABEL = 0

# Malicious pickles try to create this file in the corpus directory, so it must never exist.
CANARY_NAME = "CANARY-created-by-unpickling"

SPLIT_ROWS = {"train": 200, "validation": 60, "test": 60}
FEATURES = 784
_SEED = 20240607


# --- seeded data -----------------------------------------------------------------------------


def expected_pixels() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return uint8 images (n, 784) and int64 labels per split; every valid variant encodes them.

    Images are sparse like MNIST digits (about 80% zeros). Labels cycle through 0..9 in a
    shuffled order, so every split contains the positive label 0 and other digits.
    """
    rng = np.random.default_rng(_SEED)
    splits = {}
    for name, rows in SPLIT_ROWS.items():
        ink = rng.random((rows, FEATURES)) < 0.2
        images = np.where(ink, rng.integers(1, 256, (rows, FEATURES)), 0).astype(np.uint8)
        labels = rng.permutation(np.arange(rows) % 10).astype(np.int64)
        splits[name] = (images, labels)
    return splits


def expected_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return the float32 images in [0, 1] and int64 labels that every valid variant loads as."""
    return {
        name: (images.astype(np.float32) / np.float32(255), labels)
        for name, (images, labels) in expected_pixels().items()
    }


def _float_dataset() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    return tuple(expected_splits().values())


_KEEP = object()


def _replaced(split: str, images: Any = _KEEP, labels: Any = _KEEP, base: Any = None) -> tuple:
    """Return ``base`` (default: the float dataset) with one split's images or labels replaced."""
    dataset = [list(pair) for pair in (base if base is not None else _float_dataset())]
    index = list(SPLIT_ROWS).index(split)
    if images is not _KEEP:
        dataset[index][0] = images
    if labels is not _KEEP:
        dataset[index][1] = labels
    return tuple(tuple(pair) for pair in dataset)


# --- writers ---------------------------------------------------------------------------------


def _write_gzip(path: Path, payload: bytes) -> Path:
    # mtime=0 keeps the gzip header, and so the file, identical across runs.
    path.write_bytes(gzip.compress(payload, compresslevel=6, mtime=0))
    return path


def _write_pickle(path: Path, obj: object, protocol: int = 4) -> Path:
    return _write_gzip(path, pickle.dumps(obj, protocol=protocol))


class _LegacyPickler(pickle._Pickler):  # type: ignore[name-defined]
    """Pure-Python pickler that writes older module paths and, optionally, Python 2 strings.

    ``module_names`` rewrites global module names, for example ``numpy._core.multiarray`` to
    the numpy 1 path ``numpy.core.multiarray``. With ``python2_strings``, bytes and str are
    written with the Python 2 ``str`` opcodes (SHORT_BINSTRING, BINSTRING), which is how a
    Python 2 numpy pickle stores array data. ``pickle.load(..., encoding="latin1")`` reads
    them back as str.
    NOTE: this subclasses ``pickle._Pickler``, a private class of CPython's pickle module.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def __init__(
        self, file: Any, protocol: int, module_names: dict[str, str], python2_strings: bool
    ) -> None:
        super().__init__(file, protocol=protocol)
        self.module_names = module_names
        self.python2_strings = python2_strings

    def save_global(self, obj: Any, name: str | None = None) -> None:
        name = name or obj.__qualname__
        module = self.module_names.get(obj.__module__, obj.__module__)
        if self.proto >= 4:
            self.save(module)
            self.save(name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")
        self.memoize(obj)

    def _save_python2_string(self, data: bytes, obj: object) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def _save_bytes(self, obj: bytes) -> None:
        if self.python2_strings:
            self._save_python2_string(obj, obj)
        else:
            pickle._Pickler.save_bytes(self, obj)  # type: ignore[attr-defined]

    def _save_str(self, obj: str) -> None:
        if self.python2_strings:
            self._save_python2_string(obj.encode("latin1"), obj)
        else:
            pickle._Pickler.save_str(self, obj)  # type: ignore[attr-defined]

    dispatch[bytes] = _save_bytes
    dispatch[str] = _save_str
    # The base class maps functions to its own save_global, which would skip module_names.
    dispatch[types.FunctionType] = save_global


_NUMPY1_MODULES = {
    "numpy._core.multiarray": "numpy.core.multiarray",
    "numpy._core.numeric": "numpy.core.numeric",
}


def _legacy_dumps(
    obj: object, protocol: int, module_names: dict[str, str], python2_strings: bool = False
) -> bytes:
    import io

    buffer = io.BytesIO()
    _LegacyPickler(buffer, protocol, module_names, python2_strings).dump(obj)
    return buffer.getvalue()


class _Call:
    """Pickles as a call of ``function(*args)``, the way a malicious ``__reduce__`` does."""

    def __init__(self, function: Any, *args: Any) -> None:
        self.function = function
        self.args = args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.function, self.args


# --- valid files -----------------------------------------------------------------------------


def build_valid_variants(directory: Path | str) -> dict[str, Path]:
    """Write valid dataset files, one per accepted encoding, and return them by case name.

    Every file loads as ``expected_splits()``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    floats = _float_dataset()
    pixels = tuple(expected_pixels().values())

    def write(name: str, obj: object, protocol: int = 4) -> Path:
        return _write_pickle(directory / f"{name}.pkl.gz", obj, protocol)

    def images_as(convert: Any) -> tuple:
        return tuple((convert(images), labels) for images, labels in floats)

    def labels_as(convert: Any) -> tuple:
        return tuple((images, convert(labels)) for images, labels in floats)

    files = {}
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        files[f"protocol_{protocol}"] = write(f"protocol_{protocol}", floats, protocol)
    files["uint8_pixels"] = write("uint8_pixels", pixels)
    files["int64_pixels"] = write(
        "int64_pixels", tuple((images.astype(np.int64), labels) for images, labels in pixels)
    )
    files["float64_pixels"] = write("float64_pixels", images_as(lambda x: x.astype(np.float64)))
    files["images_3d"] = write("images_3d", images_as(lambda x: x.reshape(-1, 28, 28)))
    files["big_endian"] = write("big_endian", images_as(lambda x: x.astype(">f4")))
    files["fortran_order"] = write("fortran_order", images_as(np.asfortranarray), protocol=5)
    files["lists_not_tuples"] = write("lists_not_tuples", [list(pair) for pair in floats])
    files["labels_int32"] = write("labels_int32", labels_as(lambda y: y.astype(np.int32)))
    files["labels_float"] = write("labels_float", labels_as(lambda y: y.astype(np.float64)))
    files["labels_column"] = write("labels_column", labels_as(lambda y: y.reshape(-1, 1)))
    files["labels_numpy_scalars"] = write("labels_numpy_scalars", labels_as(list), protocol=2)

    numpy1 = {
        "numpy1_paths_protocol2": _legacy_dumps(floats, 2, _NUMPY1_MODULES),
        "numpy1_paths_protocol5": _legacy_dumps(floats, 5, _NUMPY1_MODULES),
        "python2_latin1": _legacy_dumps(
            floats, 2, {**_NUMPY1_MODULES, "builtins": "__builtin__"}, python2_strings=True
        ),
    }
    for name, payload in numpy1.items():
        files[name] = _write_gzip(directory / f"{name}.pkl.gz", payload)
    return files


# --- files to reject -------------------------------------------------------------------------


def build_corpus(directory: Path | str) -> dict[str, tuple[Path, str]]:
    """Write one file per way an upload can be unusable; return case -> (path, expected code).

    DATASET_TIMEOUT depends on the deadline, not on the file, so no file here expects it.
    The canary file ``directory / CANARY_NAME`` must not exist after any of them is loaded.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cases: dict[str, tuple[Path, str]] = {}

    def add(name: str, code: str, payload: bytes, compress: bool = True) -> None:
        path = directory / f"{name}.pkl.gz"
        if compress:
            _write_gzip(path, payload)
        else:
            path.write_bytes(payload)
        cases[name] = (path, code)

    def add_pickle(name: str, code: str, obj: object, protocol: int = 4) -> None:
        add(name, code, pickle.dumps(obj, protocol=protocol))

    _add_container_cases(add, add_pickle)
    _add_forbidden_cases(add, add_pickle, directory)
    _add_structure_cases(add, add_pickle)
    _add_value_cases(add_pickle)
    return cases


def _add_container_cases(add: Any, add_pickle: Any) -> None:
    """Cases for the gzip layer, the size caps and pickle framing."""
    valid = pickle.dumps(_float_dataset(), protocol=4)
    compressed = gzip.compress(valid, mtime=0)

    add("not_gzip_raw_pickle", "DATASET_NOT_GZIP", valid, compress=False)
    add("not_gzip_text", "DATASET_NOT_GZIP", b"label,pixel0,pixel1\n5,0,0\n", compress=False)
    add("not_gzip_empty", "DATASET_NOT_GZIP", b"", compress=False)

    add("corrupt_truncated", "DATASET_CORRUPT", compressed[: len(compressed) * 3 // 5], False)
    crc_flipped = bytearray(compressed)
    crc_flipped[-8] ^= 0xFF
    add("corrupt_crc", "DATASET_CORRUPT", bytes(crc_flipped), compress=False)
    length_flipped = bytearray(compressed)
    length_flipped[-1] ^= 0x01
    add("corrupt_length", "DATASET_CORRUPT", bytes(length_flipped), compress=False)
    middle_flipped = bytearray(compressed)
    middle_flipped[len(compressed) // 2] ^= 0x55
    add("corrupt_deflate_data", "DATASET_CORRUPT", bytes(middle_flipped), compress=False)

    # Protocol 0 writes UNICODE values up to a newline, so one unterminated line is unbounded.
    add("bomb_long_line", "DATASET_TOO_LARGE", b"V" + b"a" * BOMB_BYTES)
    # Protocol 4 BINBYTES8 (0x8e) declares its length in 8 bytes, here followed by the bytes.
    declared = b"\x80\x04\x8e" + struct.pack("<Q", BOMB_BYTES)
    add("bomb_declared_length", "DATASET_TOO_LARGE", declared + bytes(BOMB_BYTES))
    add("bomb_after_valid_pickle", "DATASET_TOO_LARGE", valid + bytes(BOMB_BYTES))

    add("not_pickle_csv", "DATASET_NOT_PICKLE", b"label,pixel0,pixel1\n5,0,0\n0,255,0\n")
    add("not_pickle_npy", "DATASET_NOT_PICKLE", _npy_bytes(np.zeros((3, 784), np.float32)))
    add("not_pickle_truncated", "DATASET_NOT_PICKLE", valid[: len(valid) // 2])
    add("not_pickle_protocol_9", "DATASET_NOT_PICKLE", b"\x80\x09N.")


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _touch_canary(directory: Path) -> _Call:
    return _Call(os.system, f"touch {shlex.quote(str(directory / CANARY_NAME))}")


def build_canary_pickle(directory: Path | str) -> Path:
    """Write only the os.system case. Its plain ``pickle.load`` creates the canary file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return _write_pickle(directory / "forbidden_os_system.pkl.gz", _touch_canary(directory), 2)


def _add_forbidden_cases(add: Any, add_pickle: Any, directory: Path) -> None:
    """Cases whose pickle names a global outside the allowlist or misuses an allowed one."""
    touch = _touch_canary(directory)
    canary = directory / CANARY_NAME

    add_pickle("forbidden_os_system", "DATASET_FORBIDDEN_OBJECT", touch, protocol=2)
    add_pickle(
        "forbidden_eval_protocol5",
        "DATASET_FORBIDDEN_OBJECT",
        _Call(eval, f"open({str(canary)!r}, 'w').close()"),
        protocol=5,
    )
    add_pickle(
        "forbidden_inside_labels",
        "DATASET_FORBIDDEN_OBJECT",
        _replaced("test", labels=touch),
    )
    add(
        "forbidden_pandas_dataframe",
        "DATASET_FORBIDDEN_OBJECT",
        b"\x80\x02cpandas.core.frame\nDataFrame\nq\x00)\x81q\x01.",
    )
    add_pickle(
        "forbidden_reconstruct_shape",
        "DATASET_FORBIDDEN_OBJECT",
        _Call(np.array(0).__reduce__()[0], np.ndarray, (1 << 16, 1 << 16), b"b"),
    )
    add_pickle(
        "forbidden_ndarray_call",
        "DATASET_FORBIDDEN_OBJECT",
        _Call(np.ndarray, (1 << 16, 1 << 16), "b"),
    )
    add_pickle("forbidden_bytes_size", "DATASET_FORBIDDEN_OBJECT", _Call(bytes, 1 << 34), 2)
    add_pickle(
        "forbidden_codecs_zlib",
        "DATASET_FORBIDDEN_OBJECT",
        _Call(__import__("_codecs").encode, "abc", "zlib"),
        protocol=2,
    )


def _add_structure_cases(add: Any, add_pickle: Any) -> None:
    """Cases with the wrong containers, shapes or counts."""
    train, validation, test = _float_dataset()
    images, labels = train
    validation_images = validation[0]
    bad_structure = "DATASET_BAD_STRUCTURE"

    add_pickle("structure_two_splits", bad_structure, (train, validation))
    add_pickle("structure_dict", bad_structure, {"train": train, "test": test})
    add_pickle("structure_array", bad_structure, images)
    triple = (images, labels, labels)
    add_pickle("structure_triple_split", bad_structure, (triple, validation, test))
    add_pickle("structure_none_images", bad_structure, _replaced("validation", images=None))
    one_per_split = b"".join(pickle.dumps(split) for split in (train, validation, test))
    add("structure_one_pickle_per_split", bad_structure, one_per_split)

    add_pickle("count_mismatch", "DATASET_COUNT_MISMATCH", _replaced("train", labels=labels[:-1]))

    bad_shape = "DATASET_BAD_SHAPE"
    add_pickle("shape_1d_images", bad_shape, _replaced("train", images=images.reshape(-1)))
    four_dimensions = images.reshape(-1, 1, 28, 28)
    add_pickle("shape_4d_images", bad_shape, _replaced("train", images=four_dimensions))
    add_pickle("shape_zero_features", bad_shape, _replaced("train", images=images[:, :0]))
    two_columns = np.stack([labels, labels], axis=1)
    add_pickle("shape_2d_labels", bad_shape, _replaced("train", labels=two_columns))
    ragged = [list(row) for row in images[:, :3]]
    ragged[7].append(0.5)
    add_pickle("shape_ragged_list", bad_shape, _replaced("train", images=ragged))

    narrower = _replaced("validation", images=validation_images[:, :783])
    add_pickle("dim_mismatch", "DATASET_DIM_MISMATCH", narrower)
    square = _replaced("train", images=images.reshape(-1, 28, 28))
    wide = _replaced("validation", images=validation_images.reshape(-1, 14, 56), base=square)
    add_pickle("dim_mismatch_image_shape", "DATASET_DIM_MISMATCH", wide)

    # Protocol 2 writes the empty array data as bytes(), a global the loader must allow.
    empty = (images[:0], labels[:0])
    add_pickle("empty_test_protocol2", "DATASET_EMPTY_SPLIT", (train, validation, empty), 2)
    add_pickle("empty_train", "DATASET_EMPTY_SPLIT", (empty, validation, test))


def _add_value_cases(add_pickle: Any) -> None:
    """Cases with non-numeric, non-finite or invalid values, and one-class splits."""
    train, validation, test = _float_dataset()

    not_numeric = "DATASET_NOT_NUMERIC"
    objects = _replaced("train", images=train[0].astype(object))
    add_pickle("not_numeric_object_images", not_numeric, objects)
    strings = _replaced("validation", labels=validation[1].astype(str))
    add_pickle("not_numeric_string_labels", not_numeric, strings)
    complex_numbers = _replaced("test", images=test[0].astype(np.complex64))
    add_pickle("not_numeric_complex_images", not_numeric, complex_numbers)

    with_nan = validation[0].copy()
    with_nan[17, 5] = np.nan
    add_pickle("not_finite_nan", "DATASET_NOT_FINITE", _replaced("validation", images=with_nan))
    with_inf = train[0].copy()
    with_inf[3, 0] = np.inf
    add_pickle("not_finite_inf", "DATASET_NOT_FINITE", _replaced("train", images=with_inf))
    overflowing = test[0].astype(np.float64)
    overflowing[9, 400] = 1e300
    overflow = _replaced("test", images=overflowing)
    add_pickle("not_finite_float32_overflow", "DATASET_NOT_FINITE", overflow)

    negative = train[1].copy()
    negative[5] = -1
    add_pickle("labels_negative", "DATASET_BAD_LABELS", _replaced("train", labels=negative))
    fractional = test[1].astype(np.float64)
    fractional[3] = 2.5
    add_pickle("labels_fractional", "DATASET_BAD_LABELS", _replaced("test", labels=fractional))
    add_pickle("labels_boolean", "DATASET_BAD_LABELS", _replaced("train", labels=train[1] == 0))

    positive = CORPUS_POSITIVE_LABEL
    no_positive = np.where(train[1] == positive, positive + 1, train[1])
    add_pickle("train_no_positive", "DATASET_NO_POSITIVE", _replaced("train", labels=no_positive))
    all_positive = np.full_like(validation[1], positive)
    no_negative = _replaced("validation", labels=all_positive)
    add_pickle("validation_no_negative", "DATASET_NO_NEGATIVE", no_negative)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tests.corpus.make_bad_files DIRECTORY", file=sys.stderr)
        return 2
    directory = Path(argv[1])
    for name, (path, code) in sorted(build_corpus(directory).items()):
        print(f"{code:28} {name:32} {path.stat().st_size:>10} {path}")
    for name, path in sorted(build_valid_variants(directory / "valid").items()):
        print(f"{'valid':28} {name:32} {path.stat().st_size:>10} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
