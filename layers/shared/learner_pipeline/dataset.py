"""Safe loading and validation of an uploaded ``mnist.pkl.gz``-style dataset.

The file is a gzip-compressed pickle of ``(train, validation, test)``, each split an
``(images, labels)`` pair. Anyone with write access to the ingest bucket controls the bytes that
get unpickled, and a plain ``pickle.load`` calls any callable the file names. So this module:

* decompresses through a reader that enforces a decompressed-size cap and a deadline, and never
  holds the whole decompressed file in one bytes object;
* unpickles with an allowlist that resolves only the numpy functions, classes and builtins that
  array pickles use, and rejects every other global before anything is constructed;
* validates structure, shapes, dtypes and values, and raises ``InvalidDatasetError`` with a
  ``DATASET_*`` code and a message that names the split, the index and the fix.
"""

from __future__ import annotations

import codecs
import gzip
import io
import math
import pickle
import time
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from learner_pipeline.errors import InvalidDatasetError, InvalidRequestError

SPLIT_NAMES = ("train", "validation", "test")

GZIP_MAGIC = b"\x1f\x8b"

RESAVE_HINT = (
    "Re-save the file as a gzip-compressed pickle of (train, validation, test) with pickle "
    "protocol 2..5, each split an (images, labels) pair of numpy arrays."
)

# Decompressed bytes pulled from gzip per call, so the deadline is checked at least this often.
_CHUNK_BYTES = 1 << 20

# The C unpickler prefetches up to 128 KiB through peek(), so buffer a little more than that.
_BUFFER_BYTES = 1 << 18

_MAX_PIXEL = 255


@dataclass(frozen=True, eq=False)
class Split:
    """One split of the dataset after validation and conversion."""

    name: str
    images: np.ndarray  # float32, shape (n, feature_dim), finite values
    labels: np.ndarray  # int64, shape (n,), non-negative


@dataclass(frozen=True, eq=False)
class Dataset:
    """The three validated splits and what loading changed on the way."""

    train: Split
    validation: Split
    test: Split
    feature_dim: int
    image_shape: tuple[int, int] | None  # (h, w) of 3-D input, else (s, s) when d == s * s
    notes: tuple[str, ...]  # conversions applied, e.g. integer pixels scaled to [0, 1]

    @property
    def splits(self) -> tuple[Split, Split, Split]:
        return (self.train, self.validation, self.test)


@dataclass(frozen=True)
class LoadLimits:
    """Resource caps for one load. The caller also checks the S3 object size against the first."""

    max_compressed_bytes: int
    max_decompressed_bytes: int
    deadline: float | None  # time.monotonic() value after which loading raises DATASET_TIMEOUT

    def __post_init__(self) -> None:
        if self.max_compressed_bytes <= 0 or self.max_decompressed_bytes <= 0:
            raise ValueError(
                "max_compressed_bytes and max_decompressed_bytes must be positive, got "
                f"{self.max_compressed_bytes} and {self.max_decompressed_bytes}"
            )


def load_dataset(stream: BinaryIO, limits: LoadLimits) -> Dataset:
    """Decompress, unpickle safely and validate a dataset read from ``stream``.

    Raises InvalidDatasetError with a DATASET_* code for every way the file can be unusable.
    Errors raised by ``stream`` itself (network, permissions) propagate unchanged.
    """
    head = _read_head(stream, len(GZIP_MAGIC))
    _check_gzip_magic(head)

    source = _CountingSource(stream, head, limits)
    with gzip.GzipFile(fileobj=source, mode="rb") as decompressed:
        reader = _LimitedReader(decompressed, limits)
        payload = _restricted_load(reader)
        trailing_bytes = reader.drain()

    if trailing_bytes:
        raise InvalidDatasetError(
            f"{trailing_bytes} bytes follow the end of the pickle, so the file contains more "
            f"than one pickled object (was pickle.dump called once per split?). {RESAVE_HINT}",
            code="DATASET_BAD_STRUCTURE",
        )

    dataset = _validate(payload)
    _check_deadline(limits.deadline, "validating the arrays")
    return dataset


def binary_labels(labels: np.ndarray, positive_label: int) -> np.ndarray:
    """Map labels to float32 1.0 where they equal ``positive_label`` and 0.0 elsewhere."""
    _check_positive_label(positive_label)
    return (np.asarray(labels) == positive_label).astype(np.float32)


def check_classes(dataset: Dataset, positive_label: int) -> None:
    """Raise unless train and validation both contain ``positive_label`` and another label.

    A binary classifier cannot be trained or tuned on a split with one class only. The test
    split is not checked.
    """
    _check_positive_label(positive_label)

    for split in (dataset.train, dataset.validation):
        positives = int(np.count_nonzero(split.labels == positive_label))
        present = _describe_labels(split.labels)

        if positives == 0:
            raise InvalidDatasetError(
                f"{split.name} split has no rows with the positive label {positive_label} "
                f"(labels present: {present}). Choose a positive label that occurs in train "
                "and validation, or add such rows.",
                code="DATASET_NO_POSITIVE",
            )
        if positives == split.labels.shape[0]:
            raise InvalidDatasetError(
                f"{split.name} split has only rows with the positive label {positive_label}, "
                "so there is no negative class. Add rows with other labels.",
                code="DATASET_NO_NEGATIVE",
            )


def _check_positive_label(positive_label: int) -> None:
    valid = isinstance(positive_label, (int, np.integer)) and not isinstance(positive_label, bool)
    if not valid or positive_label < 0:
        raise InvalidRequestError(
            f"positive label must be a non-negative integer, got {positive_label!r}",
            code="INVALID_POSITIVE_LABEL",
        )


def _describe_labels(labels: np.ndarray, shown: int = 20) -> str:
    values = np.unique(labels)
    text = ", ".join(str(value) for value in values[:shown])
    if values.size > shown:
        text += f", ... ({values.size} distinct)"
    return text


# --- reading: gzip magic, compressed and decompressed caps, deadline -----------------------------


def _read_head(stream: BinaryIO, size: int) -> bytes:
    # A network stream may return fewer bytes than requested before its end.
    head = b""
    while len(head) < size and (piece := stream.read(size - len(head))):
        head += piece
    return head


def _check_gzip_magic(head: bytes) -> None:
    if head == GZIP_MAGIC:
        return

    if not head:
        found = "the file is empty"
    elif head[:1] == b"\x80":
        found = "it starts like an uncompressed pickle"
    else:
        found = f"it starts with {head!r}, not the gzip magic {GZIP_MAGIC!r}"
    raise InvalidDatasetError(
        f"dataset is not gzip-compressed because {found}. Compress it (gzip file.pkl) and "
        "upload the .pkl.gz file.",
        code="DATASET_NOT_GZIP",
    )


def _check_deadline(deadline: float | None, step: str) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise InvalidDatasetError(
            f"loading the dataset timed out while {step}. Upload a smaller file or give the "
            "prepare function a longer timeout.",
            code="DATASET_TIMEOUT",
        )


class _CountingSource:
    """Compressed input for GzipFile: the magic already read, then ``stream``.

    Enforces the compressed-size cap, and checks the deadline before every read so that a slow
    network stream is stopped too.
    """

    def __init__(self, stream: BinaryIO, head: bytes, limits: LoadLimits) -> None:
        self._stream = stream
        self._head = head
        self._max_bytes = limits.max_compressed_bytes
        self._deadline = limits.deadline
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        _check_deadline(self._deadline, f"reading the upload (at {self.bytes_read} bytes)")
        if self._head:
            data, self._head = self._head, b""
        else:
            # Read one byte past the cap at most, so an oversized file is noticed but not buffered.
            allowed = self._max_bytes - self.bytes_read + 1
            data = self._stream.read(allowed if size < 0 else min(size, allowed))

        self.bytes_read += len(data)
        if self.bytes_read > self._max_bytes:
            raise InvalidDatasetError(
                f"compressed dataset is larger than the limit of {self._max_bytes} bytes. "
                "Upload a smaller file or raise the compressed size limit.",
                code="DATASET_TOO_LARGE",
            )
        return data


class _CappedRawReader(io.RawIOBase):
    """Raw stream over GzipFile that counts decompressed bytes and checks the deadline."""

    def __init__(self, decompressed: gzip.GzipFile, limits: LoadLimits) -> None:
        super().__init__()
        self._decompressed = decompressed
        self._limits = limits
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        _check_deadline(self._limits.deadline, f"decompressing (at {self.bytes_read} bytes)")

        view = memoryview(buffer).cast("B")
        allowed = self._limits.max_decompressed_bytes - self.bytes_read + 1
        chunk = view[: min(len(view), _CHUNK_BYTES, allowed)]
        try:
            count = self._decompressed.readinto(chunk)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InvalidDatasetError(
                f"gzip stream is truncated or corrupt after {self.bytes_read} decompressed "
                f"bytes ({exc}). Upload the file again, or re-create it with gzip.",
                code="DATASET_CORRUPT",
            ) from exc

        self.bytes_read += count
        if self.bytes_read > self._limits.max_decompressed_bytes:
            raise _too_large(self._limits.max_decompressed_bytes)
        return count


def _too_large(max_bytes: int) -> InvalidDatasetError:
    return InvalidDatasetError(
        f"decompressed dataset is larger than the limit of {max_bytes} bytes. Upload fewer "
        "rows or raise the decompressed size limit (parameter MaxDecompressedMiB).",
        code="DATASET_TOO_LARGE",
    )


class _LimitedReader:
    """Buffered file object for the unpickler, with read sizes checked before any allocation.

    The unpickler requests as many bytes as a length prefix in the file declares, so a few bytes
    of input can request gigabytes. Requests that would pass the decompressed cap are rejected
    here, before BufferedReader allocates the result.
    """

    def __init__(self, decompressed: gzip.GzipFile, limits: LoadLimits) -> None:
        self._raw = _CappedRawReader(decompressed, limits)
        self._buffered = io.BufferedReader(self._raw, buffer_size=_BUFFER_BYTES)
        self._max_bytes = limits.max_decompressed_bytes
        self._consumed = 0

    def _reserve(self, size: int) -> None:
        if self._consumed + size > self._max_bytes:
            raise _too_large(self._max_bytes)

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise ValueError("an unbounded read is not supported, so pass a size")
        self._reserve(size)
        data = self._buffered.read(size)
        self._consumed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        self._reserve(memoryview(buffer).nbytes)
        count = self._buffered.readinto(buffer)
        self._consumed += count
        return count

    def readline(self, size: int = -1) -> bytes:
        # Protocol 0 stores whole arrays on one text line, so a line is read in bounded pieces.
        pieces = []
        while True:
            piece = self._buffered.readline(_CHUNK_BYTES)
            self._consumed += len(piece)
            self._reserve(0)
            pieces.append(piece)
            if not piece or piece.endswith(b"\n"):
                return b"".join(pieces)

    def peek(self, size: int = 0) -> bytes:
        return self._buffered.peek(size)

    def drain(self) -> int:
        """Read to the end of the gzip stream, so its CRC is verified, and return the byte count."""
        remaining = 0
        while piece := self._buffered.read1(_CHUNK_BYTES):
            remaining += len(piece)
        return remaining


# --- unpickling with an allowlist -----------------------------------------------------------------


class _NdarrayMarker:
    """Stands in for ``numpy.ndarray`` in the pickle, because calling the real class allocates.

    Array pickles only pass ``numpy.ndarray`` as the subtype argument of ``_reconstruct``.
    A file that called the real class could allocate an array of any shape without its data.
    """

    def __repr__(self) -> str:
        return "numpy.ndarray"

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise _forbidden(f"a call of numpy.ndarray with arguments {args!r}")


_NDARRAY = _NdarrayMarker()

_reconstruct_array = np.array(0).__reduce__()[0]
_scalar_from_bytes = np.float32(0).__reduce__()[0]
_array_from_buffer = np.array([0]).__reduce_ex__(5)[0]


def _reconstruct(subtype: object, shape: object, typecode: object) -> np.ndarray:
    # numpy always writes an empty placeholder of shape (0,) and fills it with BUILD state,
    # whose data length numpy checks against the declared shape.
    if subtype is not _NDARRAY or not isinstance(shape, tuple) or math.prod(shape) != 0:
        raise _forbidden(
            f"a numpy array reconstruction with subtype {subtype!r} and shape {shape!r} "
            "(numpy's pickler writes numpy.ndarray and an empty shape such as (0,))"
        )
    return _reconstruct_array(np.ndarray, shape, typecode)


def _encode_latin1(text: object, encoding: object = "utf-8") -> bytes:
    # Python 3 pickles bytes as _codecs.encode(text, "latin1") under protocols 0..2.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise _forbidden(f"_codecs.encode with encoding {encoding!r}, where only latin1 is used")
    return codecs.encode(text, "latin1")


def _empty_bytes(*args: object) -> bytes:
    # Python 3 pickles b"" as bytes() under protocols 0..2, while bytes(n) would allocate n bytes.
    if args:
        raise _forbidden(f"bytes called with arguments {args!r}, where only bytes() is used")
    return b""


_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): _scalar_from_bytes,
    ("numpy._core.multiarray", "scalar"): _scalar_from_bytes,
    ("numpy.core.numeric", "_frombuffer"): _array_from_buffer,
    ("numpy._core.numeric", "_frombuffer"): _array_from_buffer,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode_latin1,
    ("builtins", "bytes"): _empty_bytes,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "complex"): complex,
    ("__builtin__", "complex"): complex,
}


def _forbidden(what: str) -> InvalidDatasetError:
    return InvalidDatasetError(
        f"pickle contains {what}, which a dataset file may not contain. Only numpy arrays, "
        "numbers and strings are loaded, so the file is malicious or contains other objects. "
        f"Convert every split to numpy arrays. {RESAVE_HINT}",
        code="DATASET_FORBIDDEN_OBJECT",
    )


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in ``_ALLOWED_GLOBALS``.

    Names map straight to objects and no module is imported, so a rejected global is neither
    imported nor called.
    """

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise _forbidden(f"the global {module}.{name}")
        return allowed

    def persistent_load(self, pid: Any) -> Any:
        raise _forbidden(f"the persistent id {pid!r}")


def _restricted_load(reader: _LimitedReader) -> object:
    # encoding="latin1" reads Python 2 str data (numpy array buffers) as latin1 text, which numpy
    # turns back into the original bytes.
    first_bytes = reader.peek(16)[:16]
    unpickler = _RestrictedUnpickler(reader, encoding="latin1")  # type: ignore[arg-type]
    try:
        return unpickler.load()
    except InvalidDatasetError:
        raise
    except MemoryError as exc:
        raise InvalidDatasetError(
            "pickle declares an object too large to allocate. Upload fewer rows.",
            code="DATASET_TOO_LARGE",
        ) from exc
    # NOTE: untrusted bytes can make the unpickler or numpy raise almost any exception type
    # (UnpicklingError, EOFError, ValueError, TypeError, ...). Each one means "not a readable
    # dataset pickle".
    except Exception as exc:
        # A corrupt gzip stream can still inflate to garbage that fails to unpickle first, so
        # read on to the CRC check, which raises DATASET_CORRUPT when corruption is the cause.
        reader.drain()
        raise InvalidDatasetError(
            f"decompressed data is not a readable pickle ({type(exc).__name__}: {exc}). It "
            f"starts with {first_bytes!r}. {RESAVE_HINT}",
            code="DATASET_NOT_PICKLE",
        ) from exc


# --- validation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ShapedSplit:
    name: str
    images: np.ndarray  # original dtype, 2-D
    labels: np.ndarray  # original dtype, 1-D
    image_shape: tuple[int, int] | None  # set when the input images were 3-D


def _validate(payload: object) -> Dataset:
    pairs = _split_pairs(payload)
    notes: list[str] = []

    shaped = [_shape_split(name, images, labels, notes) for name, (images, labels) in pairs]
    feature_dim, image_shape = _common_dimensions(shaped)

    splits = [
        Split(
            name=split.name,
            images=_convert_images(split.name, split.images, notes),
            labels=_convert_labels(split.name, split.labels, notes),
        )
        for split in shaped
    ]
    return Dataset(
        train=splits[0],
        validation=splits[1],
        test=splits[2],
        feature_dim=feature_dim,
        image_shape=image_shape,
        notes=tuple(dict.fromkeys(notes)),
    )


def _split_pairs(payload: object) -> list[tuple[str, tuple[object, object]]]:
    if not isinstance(payload, (tuple, list)) or len(payload) != len(SPLIT_NAMES):
        raise InvalidDatasetError(
            f"pickled object is {_describe(payload)}, expected a tuple of 3 splits "
            f"(train, validation, test). {RESAVE_HINT}",
            code="DATASET_BAD_STRUCTURE",
        )

    pairs = []
    for name, pair in zip(SPLIT_NAMES, payload, strict=True):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise InvalidDatasetError(
                f"{name} split is {_describe(pair)}, expected an (images, labels) pair. "
                f"{RESAVE_HINT}",
                code="DATASET_BAD_STRUCTURE",
            )
        pairs.append((name, (pair[0], pair[1])))
    return pairs


def _describe(value: object) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        keys = ", ".join(repr(key) for key in list(value)[:5])
        return f"a dict with keys [{keys}]"
    if isinstance(value, np.ndarray):
        return f"a numpy array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _as_array(name: str, role: str, value: object) -> np.ndarray:
    if not isinstance(value, (np.ndarray, list, tuple)):
        raise InvalidDatasetError(
            f"{name} {role} is {_describe(value)}, expected a numpy array. {RESAVE_HINT}",
            code="DATASET_BAD_STRUCTURE",
        )
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidDatasetError(
            f"{name} {role} cannot be read as one array ({exc}). Store them as a single numpy "
            "array with one row per example.",
            code="DATASET_BAD_SHAPE",
        ) from exc

    if array.dtype.kind not in "iuf" and not (role == "labels" and array.dtype.kind == "b"):
        raise InvalidDatasetError(
            f"{name} {role} have dtype {array.dtype}, which is not numeric. Store images as "
            "float32 in [0, 1] or uint8 in [0, 255], and labels as integers.",
            code="DATASET_NOT_NUMERIC",
        )
    return array


def _shape_split(
    name: str, images_value: object, labels_value: object, notes: list[str]
) -> _ShapedSplit:
    images = _as_array(name, "images", images_value)
    labels = _as_array(name, "labels", labels_value)

    image_shape = None
    if images.ndim == 3:
        image_shape = (int(images.shape[1]), int(images.shape[2]))
        images = images.reshape(images.shape[0], -1)
        notes.append(f"3-D images of shape {image_shape} were flattened to rows of features")
    if images.ndim != 2 or images.shape[1] == 0:
        raise InvalidDatasetError(
            f"{name} images have shape {images.shape}, expected (n, d) with d > 0 or (n, h, w). "
            "Store one image per row.",
            code="DATASET_BAD_SHAPE",
        )

    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels.reshape(-1)
        notes.append("labels of shape (n, 1) were flattened to (n,)")
    if labels.ndim != 1:
        raise InvalidDatasetError(
            f"{name} labels have shape {labels.shape}, expected (n,). Store one label per "
            "image in a 1-D array.",
            code="DATASET_BAD_SHAPE",
        )

    if images.shape[0] != labels.shape[0]:
        raise InvalidDatasetError(
            f"{name} split has {images.shape[0]} images but {labels.shape[0]} labels. Store "
            "exactly one label per image.",
            code="DATASET_COUNT_MISMATCH",
        )
    if images.shape[0] == 0:
        raise InvalidDatasetError(
            f"{name} split has no rows. Every split (train, validation, test) needs examples.",
            code="DATASET_EMPTY_SPLIT",
        )
    return _ShapedSplit(name, images, labels, image_shape)


def _common_dimensions(shaped: list[_ShapedSplit]) -> tuple[int, tuple[int, int] | None]:
    feature_dim = shaped[0].images.shape[1]
    for split in shaped[1:]:
        if split.images.shape[1] != feature_dim:
            raise InvalidDatasetError(
                f"{split.name} images have {split.images.shape[1]} features but train images "
                f"have {feature_dim}. Every split needs the same number of features.",
                code="DATASET_DIM_MISMATCH",
            )

    shapes = {split.image_shape for split in shaped if split.image_shape is not None}
    if len(shapes) > 1:
        raise InvalidDatasetError(
            f"splits have different image shapes {sorted(shapes)}. Every split needs the same "
            "image height and width.",
            code="DATASET_DIM_MISMATCH",
        )
    if shapes:
        return feature_dim, shapes.pop()

    side = math.isqrt(feature_dim)
    return feature_dim, ((side, side) if side * side == feature_dim else None)


def _convert_images(name: str, images: np.ndarray, notes: list[str]) -> np.ndarray:
    if images.dtype.kind in "iu":
        in_pixel_range = images.min() >= 0 and images.max() <= _MAX_PIXEL
        if in_pixel_range:
            notes.append("integer pixels in [0, 255] were scaled to [0, 1]")
            # Divided in place, so no second float32 copy of the images exists.
            converted = images.astype(np.float32)
            converted /= np.float32(_MAX_PIXEL)
        else:
            notes.append("integer features outside [0, 255] were cast to float32 without scaling")
            converted = images.astype(np.float32)
    else:
        if images.dtype != np.float32:
            notes.append(f"{images.dtype} features were cast to float32")
        # Casting float64 values beyond float32's range yields inf, which the check below catches.
        with np.errstate(over="ignore"):
            converted = images.astype(np.float32, copy=False)

    _check_finite(name, images, converted)
    return np.ascontiguousarray(converted)


def _check_finite(name: str, original: np.ndarray, converted: np.ndarray) -> None:
    # min and max return NaN if any value is NaN, and infinity if any value is infinite, so
    # valid images pass without a boolean array of their size.
    if converted.size == 0 or (np.isfinite(converted.min()) and np.isfinite(converted.max())):
        return

    finite_rows = np.isfinite(converted).all(axis=1)
    bad_rows = np.flatnonzero(~finite_rows)
    row = int(bad_rows[0])
    column = int(np.flatnonzero(~np.isfinite(converted[row]))[0])
    value = original[row, column].item()
    raise InvalidDatasetError(
        f"{name} images contain NaN, infinity or a value beyond the float32 range in "
        f"{bad_rows.size} rows, the first at row {row}, column {column} (value {value!r}). "
        "Replace or drop those rows.",
        code="DATASET_NOT_FINITE",
    )


def _convert_labels(name: str, labels: np.ndarray, notes: list[str]) -> np.ndarray:
    int64_max = np.iinfo(np.int64).max

    if labels.dtype.kind == "b":
        _raise_bad_label(name, labels, 0, "a boolean, not a class number")
    if labels.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            invalid = ~np.isfinite(labels) | (labels != np.floor(labels)) | (labels >= 2.0**63)
        _raise_first(name, labels, invalid, "not a whole number")
        notes.append(f"{labels.dtype} labels were cast to int64")
    if labels.dtype.kind == "u":
        _raise_first(name, labels, labels > int64_max, "larger than the int64 maximum")

    _raise_first(name, labels, labels < 0, "negative")
    return np.ascontiguousarray(labels.astype(np.int64, copy=False))


def _raise_first(name: str, labels: np.ndarray, invalid: np.ndarray, reason: str) -> None:
    if invalid.any():
        _raise_bad_label(name, labels, int(np.flatnonzero(invalid)[0]), reason)


def _raise_bad_label(name: str, labels: np.ndarray, index: int, reason: str) -> None:
    raise InvalidDatasetError(
        f"{name} labels are invalid: label {labels[index].item()!r} at index {index} is "
        f"{reason}. Labels must be non-negative integers such as the digits 0..9.",
        code="DATASET_BAD_LABELS",
    )
