"""RecordIO-protobuf encoding of dense numpy arrays, byte-identical to SageMaker Python SDK v2.

Each row becomes one ``aialgs.data.Record`` protobuf message (``record.proto`` of the SageMaker
built-in algorithms). Its ``features["values"]`` entry contains the row as a Float32, Float64
or Int32 tensor, and its ``label["values"]`` entry, when labels are given, contains the label.
Each message is framed as an MXNet RecordIO record. The frame starts with the magic number
0xced7230a and a little-endian uint32 length word, whose low 29 bits are the payload length and
whose high 3 bits are a continuation flag. The payload follows, padded with zero bytes to a
multiple of 4.

The writer reproduces ``sagemaker.amazon.common.write_numpy_to_dense_tensor`` of SDK v2 without
the protobuf package and without a Python loop per row, and the reader parses both writers'
output. Only numpy is needed, so the module fits in a Lambda layer.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = [
    "RECORDIO_MAGIC",
    "RecordIOError",
    "encode_dense_tensor",
    "encode_dense_tensor_buffer",
    "encoded_row_size",
    "read_dense_tensor",
    "write_numpy_to_dense_tensor",
]

RECORDIO_MAGIC = 0xCED7230A

_MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
_LENGTH_BITS = 29
_MAX_PAYLOAD_LENGTH = (1 << _LENGTH_BITS) - 1
_HEADER_SIZE = 8

# Continuation flags of MXNet RecordIO (dmlc-core recordio.h): a writer that finds the magic
# number inside a payload splits the payload there, and the reader puts the magic number back.
_WHOLE, _FIRST_PART, _MIDDLE_PART, _LAST_PART = 0, 1, 2, 3

# Rows are encoded in chunks of about this many bytes, so the working buffers stay in cache and
# a file writer never keeps the whole output in memory.
_CHUNK_BYTES = 1 << 20

# Map entry key "values" as protobuf bytes: field 1 (string), length 6, then the UTF-8 text.
_VALUES_KEY = b"\x0a\x06values"

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1

_IntOrArray = TypeVar("_IntOrArray", int, np.ndarray)


class RecordIOError(ValueError):
    """Invalid RecordIO-protobuf input. The message names the record index and byte offset."""


# ---------------------------------------------------------------------------------------------
# Tensor types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TensorType:
    """One tensor message of ``aialgs.data.Value`` and how its values are encoded."""

    name: str
    value_field: int
    dtype: np.dtype
    itemsize: int | None  # bytes per value, None for varint encoding
    wire_type: int  # wire type of one unpacked value


_FLOAT32 = _TensorType("Float32", 2, np.dtype("<f4"), 4, 5)
_FLOAT64 = _TensorType("Float64", 3, np.dtype("<f8"), 8, 1)
_INT32 = _TensorType("Int32", 7, np.dtype("<i4"), None, 0)
_TENSOR_TYPES = {tensor.value_field: tensor for tensor in (_FLOAT32, _FLOAT64, _INT32)}
_BYTES_VALUE_FIELD = 9


def _resolve_tensor_type(dtype: np.dtype) -> _TensorType:
    """Return the tensor type the SDK v2 writer uses for a numpy dtype, or raise ValueError.

    SDK v2 compares with ``np.dtype(int)``, ``np.dtype(float)`` and ``np.dtype("float32")``,
    so it writes int64 arrays as Int32 tensors and rejects int32 arrays.
    """
    if dtype == np.dtype(np.int64):
        return _INT32
    if dtype == np.dtype(np.float64):
        return _FLOAT64
    if dtype == np.dtype(np.float32):
        return _FLOAT32
    raise ValueError(
        f"Unsupported dtype {dtype} on array. Use float32, float64 or int64 (written as Int32)."
    )


# ---------------------------------------------------------------------------------------------
# Protobuf wire format, scalar helpers
# ---------------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    """Encode a non-negative integer as a protobuf varint."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    """Encode a length-delimited field (wire type 2): key, length, payload."""
    return _varint(field_number << 3 | 2) + _varint(len(payload)) + payload


def _padding(length: _IntOrArray) -> _IntOrArray:
    """Return the count of zero bytes after a payload of ``length`` bytes (an int or an array)."""
    return -length % 4


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------


def write_numpy_to_dense_tensor(
    file: BinaryIO, array: ArrayLike, labels: ArrayLike | None = None
) -> None:
    """Write each row of a 2-D array to ``file`` as one RecordIO-protobuf record.

    Same signature, checks and bytes as SDK v2's ``write_numpy_to_dense_tensor``, except that
    the label count must equal the row count. Features and labels may be float32, float64 or
    int64, and int64 values are written as Int32 tensors.
    Raises ValueError if ``array`` is not 2-D, if ``labels`` is not 1-D or has another length
    than the row count, if a dtype is unsupported, or if an int64 value does not fit in int32.
    The output is written in chunks of about 1 MiB and nothing is written when a check fails.
    """
    encoding = _check_arguments(array, labels)
    if encoding.fixed_length:
        chunks = _encode_fixed_length(*encoding.arrays)
    else:
        chunks = _encode_varying_length(*encoding.arrays)

    for chunk in chunks:
        file.write(chunk)


def encode_dense_tensor(array: ArrayLike, labels: ArrayLike | None = None) -> bytes:
    """Return the bytes that ``write_numpy_to_dense_tensor`` writes for these arguments.

    For large outputs, ``encode_dense_tensor_buffer`` is faster, because filling a numpy array
    takes fewer page faults than filling a ``bytes`` object.
    """
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, array, labels)
    return buffer.getvalue()


def encode_dense_tensor_buffer(array: ArrayLike, labels: ArrayLike | None = None) -> memoryview:
    """Encode the records of ``encode_dense_tensor`` into one new buffer and return a view of it.

    The result is a 1-D, C-contiguous memoryview of unsigned bytes over a numpy array, so
    ``file.write``, ``bytes()``, ``len()``, ``==`` and ``np.frombuffer`` accept it. botocore
    request bodies do not, so wrap it in a file object before an upload. Raises ValueError in
    the cases that ``write_numpy_to_dense_tensor`` does.
    """
    encoding = _check_arguments(array, labels)
    if encoding.fixed_length:
        output = _encode_fixed_length_buffer(*encoding.arrays)
    else:
        chunks = [np.frombuffer(chunk, dtype=np.uint8) for chunk in _encode_varying_length(*encoding.arrays)]
        output = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.uint8)
    return memoryview(output).cast("B")


def encoded_row_size(
    feature_dim: int,
    dtype: DTypeLike,
    with_label: bool,
    *,
    label_dtype: DTypeLike | None = None,
) -> int:
    """Return the bytes of one encoded row, framing and padding included.

    ``dtype`` is the feature dtype (float32 or float64) and ``label_dtype`` defaults to it.
    A row count times this size is the exact output size. Raises ValueError for int64, because
    Int32 tensors use varint encoding and their size depends on the values.
    """
    if feature_dim < 0:
        raise ValueError(f"feature_dim must be >= 0, got {feature_dim}")

    feature_type = _resolve_tensor_type(np.dtype(dtype))
    label_type = None
    if with_label:
        label_type = _resolve_tensor_type(np.dtype(dtype if label_dtype is None else label_dtype))

    if feature_type.itemsize is None or (label_type is not None and label_type.itemsize is None):
        raise ValueError(
            "int64 values are written as Int32 varints, so the encoded size depends on the "
            "values. Use float32 or float64, or measure len(encode_dense_tensor(...))."
        )
    return _fixed_layout(feature_dim, feature_type, label_type).stride


@dataclass(frozen=True)
class _Encoding:
    """Checked writer arguments and the tensor types their dtypes map to."""

    features: np.ndarray
    feature_type: _TensorType
    labels: np.ndarray | None
    label_type: _TensorType | None

    @property
    def arrays(self) -> tuple[np.ndarray, _TensorType, np.ndarray | None, _TensorType | None]:
        return self.features, self.feature_type, self.labels, self.label_type

    @property
    def fixed_length(self) -> bool:
        """Whether every row encodes to the same length, which is true unless a value is Int32."""
        return self.feature_type.itemsize is not None and (
            self.label_type is None or self.label_type.itemsize is not None
        )


def _check_arguments(array: ArrayLike, labels: ArrayLike | None) -> _Encoding:
    """Run every check of the SDK v2 writer, in its order, before any byte is written."""
    features, label_vector = _validate(array, labels)
    feature_type = _resolve_tensor_type(features.dtype)
    label_type = None if label_vector is None else _resolve_tensor_type(label_vector.dtype)
    _check_int32_range(features, feature_type)
    _check_int32_range(label_vector, label_type)
    return _Encoding(features, feature_type, label_vector, label_type)


def _validate(array: ArrayLike, labels: ArrayLike | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Check shapes in the order SDK v2 does and return the arrays."""
    features = np.asarray(array)
    if features.ndim != 2:
        raise ValueError(f"Array must be a Matrix (2-D), got shape {features.shape}")
    if labels is None:
        return features, None

    label_vector = np.asarray(labels)
    if label_vector.ndim != 1:
        raise ValueError(f"Labels must be a Vector (1-D), got shape {label_vector.shape}")

    # NOTE: SDK v2 accepts labels whose length equals the column count instead of the row
    # count, then writes the first labels or fails with IndexError halfway. This writer raises.
    if label_vector.shape[0] != features.shape[0]:
        raise ValueError(
            f"Label shape {label_vector.shape} not compatible with array shape {features.shape}: "
            f"expected one label per row ({features.shape[0]})"
        )
    return features, label_vector


def _check_int32_range(values: np.ndarray | None, tensor_type: _TensorType | None) -> None:
    """Raise ValueError like protobuf does when an int64 value does not fit an Int32 tensor."""
    if values is None or tensor_type is not _INT32 or values.size == 0:
        return

    out_of_range = (values < _INT32_MIN) | (values > _INT32_MAX)
    if out_of_range.any():
        first = values[np.unravel_index(np.argmax(out_of_range), values.shape)]
        raise ValueError(f"Value out of range: {int(first)}")


def _quiet_nans(values: np.ndarray, tensor_type: _TensorType) -> np.ndarray:
    """Return float32 values with the quiet bit set on every NaN, as protobuf stores them.

    Python's protobuf converts each float32 to a double and back, which sets the quiet bit of a
    signalling NaN and keeps sign and payload. Float64 values pass through unchanged.
    """
    # np.max propagates NaN and needs no temporary array, unlike np.isnan(values).any().
    if tensor_type is not _FLOAT32 or values.size == 0 or not np.isnan(values.max()):
        return values

    bits = values.view(np.uint32).copy()
    bits[np.isnan(values)] |= np.uint32(0x00400000)
    return bits.view(values.dtype)


# --- rows of one fixed length -----------------------------------------------------------------


@dataclass(frozen=True)
class _FixedLayout:
    """Byte layout shared by every row when all values have a fixed size."""

    template: np.ndarray  # one framed record with zero values
    feature_span: tuple[int, int]
    label_span: tuple[int, int] | None

    @property
    def stride(self) -> int:
        return self.template.size


def _tensor_entry(map_field: int, tensor_type: _TensorType, data: bytes) -> bytes:
    """Encode one map entry ``{"values": Value{<type>_tensor{values: data}}}`` of a Record."""
    tensor = _length_delimited(1, data) if data else b""
    value = _length_delimited(tensor_type.value_field, tensor)
    entry = _VALUES_KEY + _length_delimited(2, value)
    return _length_delimited(map_field, entry)


def _fixed_layout(
    feature_dim: int, feature_type: _TensorType, label_type: _TensorType | None
) -> _FixedLayout:
    """Encode a record of zeros once and locate where each row's values go."""
    assert feature_type.itemsize is not None
    feature_size = feature_dim * feature_type.itemsize
    if feature_size > _MAX_PAYLOAD_LENGTH:
        raise ValueError(
            f"a row of {feature_dim} values takes {feature_size} bytes, more than the RecordIO "
            f"maximum of {_MAX_PAYLOAD_LENGTH}"
        )
    payload = _tensor_entry(1, feature_type, bytes(feature_size))
    feature_end = _HEADER_SIZE + len(payload)

    label_span = None
    if label_type is not None:
        assert label_type.itemsize is not None
        payload += _tensor_entry(2, label_type, bytes(label_type.itemsize))
        label_end = _HEADER_SIZE + len(payload)
        label_span = (label_end - label_type.itemsize, label_end)

    if len(payload) > _MAX_PAYLOAD_LENGTH:
        raise ValueError(
            f"a row of {feature_dim} values encodes to {len(payload)} bytes, more than the "
            f"RecordIO maximum of {_MAX_PAYLOAD_LENGTH}"
        )
    framed = _MAGIC_BYTES + struct.pack("<I", len(payload)) + payload
    framed += bytes(_padding(len(payload)))
    return _FixedLayout(
        template=np.frombuffer(framed, dtype=np.uint8),
        feature_span=(feature_end - feature_size, feature_end),
        label_span=label_span,
    )


def _encode_fixed_length(
    features: np.ndarray,
    feature_type: _TensorType,
    labels: np.ndarray | None,
    label_type: _TensorType | None,
) -> Iterator[memoryview]:
    """Yield the records of float rows, whose encoded length is the same for every row.

    A chunk buffer of whole records is filled once with the template, and then only the
    feature and label bytes are copied in for each chunk.
    """
    n_rows, n_columns = features.shape
    layout = _fixed_layout(n_columns, feature_type, label_type)
    rows_per_chunk = max(1, min(n_rows, _CHUNK_BYTES // layout.stride))
    buffer = np.empty((rows_per_chunk, layout.stride), dtype=np.uint8)
    buffer[:] = layout.template

    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        rows = buffer[: stop - start]
        label_chunk = None if labels is None else labels[start:stop]
        _copy_values(rows, layout, features[start:stop], feature_type, label_chunk, label_type)
        yield memoryview(rows).cast("B")


def _encode_fixed_length_buffer(
    features: np.ndarray,
    feature_type: _TensorType,
    labels: np.ndarray | None,
    label_type: _TensorType | None,
) -> np.ndarray:
    """Return the records of float rows in one new 1-D uint8 array.

    Each chunk of rows gets the template bytes outside the feature values, then its values,
    while those rows are still in cache. So every output byte is written once, except the
    label bytes, which are written twice.
    """
    n_rows, n_columns = features.shape
    layout = _fixed_layout(n_columns, feature_type, label_type)
    rows_per_chunk = max(1, min(n_rows, _CHUNK_BYTES // layout.stride))
    # numpy marks large arrays for transparent huge pages with madvise (numpy 1.20 and later on
    # Linux), so filling this array takes far fewer page faults than filling a bytes object.
    output = np.empty((n_rows, layout.stride), dtype=np.uint8)
    feature_start, feature_end = layout.feature_span
    head = layout.template[:feature_start]
    tail = layout.template[feature_end:]

    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        rows = output[start:stop]
        rows[:, :feature_start] = head
        rows[:, feature_end:] = tail
        label_chunk = None if labels is None else labels[start:stop]
        _copy_values(rows, layout, features[start:stop], feature_type, label_chunk, label_type)

    return output.reshape(-1)


def _copy_values(
    rows: np.ndarray,
    layout: _FixedLayout,
    features: np.ndarray,
    feature_type: _TensorType,
    labels: np.ndarray | None,
    label_type: _TensorType | None,
) -> None:
    """Copy the feature and label values of a chunk of rows into their records."""
    n_rows = rows.shape[0]
    feature_start, feature_end = layout.feature_span
    chunk = np.ascontiguousarray(features, dtype=feature_type.dtype)
    chunk = _quiet_nans(chunk, feature_type)
    rows[:, feature_start:feature_end] = chunk.view(np.uint8).reshape(n_rows, -1)

    if labels is None or label_type is None or layout.label_span is None:
        return
    label_chunk = np.ascontiguousarray(labels, dtype=label_type.dtype)
    label_chunk = _quiet_nans(label_chunk, label_type)
    label_start, label_end = layout.label_span
    rows[:, label_start:label_end] = label_chunk.view(np.uint8).reshape(n_rows, -1)


# --- rows whose length depends on the values (Int32 varints) ------------------------------------

_VARINT_WIDTH = 10  # bytes of the longest varint, a negative int32 sign-extended to 64 bits
_LENGTH_VARINT_WIDTH = 5  # bytes of the longest varint of a uint32 length
# Maximum bytes of a map entry besides its values: 3 tags, 4 lengths of up to 5 bytes, the key.
_ENTRY_OVERHEAD = 3 + 4 * _LENGTH_VARINT_WIDTH + len(_VALUES_KEY)


# Smallest value of each varint size from 2 to 10 bytes.
_VARINT_SIZE_THRESHOLDS = np.array([1 << (7 * size) for size in range(1, 10)], dtype=np.uint64)


def _as_unsigned(values: np.ndarray) -> np.ndarray:
    """Return int64 values as uint64, sign-extended as protobuf writes negative int32 values."""
    return np.asarray(values).astype(np.int64).view(np.uint64)


def _varint_sizes(values: np.ndarray) -> np.ndarray:
    """Return the varint size in bytes of each value."""
    unsigned = _as_unsigned(values)
    sizes = np.ones(unsigned.shape, dtype=np.int64)
    if unsigned.size == 0:
        return sizes
    # One comparison per size that occurs, so arrays of small values take one or two passes.
    largest = unsigned.max()
    for threshold in _VARINT_SIZE_THRESHOLDS[_VARINT_SIZE_THRESHOLDS <= largest]:
        sizes += unsigned >= threshold
    return sizes


def _varint_columns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encode values as varints in byte columns and return (bytes, mask of used bytes, sizes).

    There are as many columns as the longest varint has bytes, so small values stay narrow.
    """
    unsigned = _as_unsigned(values)
    sizes = _varint_sizes(unsigned.view(np.int64))
    width = int(sizes.max(initial=1))
    encoded = np.empty((*unsigned.shape, width), dtype=np.uint8)
    for position in range(width):
        group = (unsigned >> np.uint64(7 * position)).astype(np.uint8) & np.uint8(0x7F)
        continued = (sizes > position + 1).view(np.uint8) << np.uint8(7)
        encoded[..., position] = group | continued
    return encoded, np.arange(width) < sizes[..., None], sizes


class _TokenRows:
    """Byte columns per row with a mask of the bytes in use.

    The used bytes, read row after row, are the encoded output.
    """

    def __init__(self, n_rows: int) -> None:
        self.n_rows = n_rows
        self.columns: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []

    def add(self, columns: np.ndarray, mask: np.ndarray | None = None) -> None:
        self.columns.append(columns)
        self.masks.append(np.ones(columns.shape, dtype=bool) if mask is None else mask)

    def add_constant(self, data: bytes, present: np.ndarray | None = None) -> None:
        """Add the same bytes to every row, or only to the rows where ``present`` is true."""
        constant = np.frombuffer(data, dtype=np.uint8)
        columns = np.broadcast_to(constant, (self.n_rows, constant.size))
        mask = None if present is None else np.repeat(present[:, None], constant.size, axis=1)
        self.add(columns, mask)

    def add_varints(self, values: np.ndarray, present: np.ndarray | None = None) -> None:
        encoded, mask, _ = _varint_columns(values)
        if present is not None:
            mask &= present[:, None]
        self.add(encoded, mask)

    def add_uint32(self, values: np.ndarray) -> None:
        self.add(values.astype("<u4").view(np.uint8).reshape(self.n_rows, 4))

    def extend(self, other: _TokenRows) -> None:
        self.columns += other.columns
        self.masks += other.masks

    def compact(self) -> np.ndarray:
        """Return the used bytes in row order, because boolean indexing reads row-major."""
        return np.concatenate(self.columns, axis=1)[np.concatenate(self.masks, axis=1)]


def _values_bytes(
    values: np.ndarray, tensor_type: _TensorType
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (byte columns, mask of used bytes, byte length per row) of each row's values."""
    n_rows = values.shape[0]
    if tensor_type.itemsize is None:
        encoded, mask, sizes = _varint_columns(values)
        lengths = sizes.sum(axis=1)
        return encoded.reshape(n_rows, -1), mask.reshape(n_rows, -1), lengths

    raw = _quiet_nans(np.ascontiguousarray(values, dtype=tensor_type.dtype), tensor_type)
    raw_bytes = raw.view(np.uint8).reshape(n_rows, -1)
    lengths = np.full(n_rows, raw_bytes.shape[1], dtype=np.int64)
    return raw_bytes, np.ones(raw_bytes.shape, dtype=bool), lengths


def _add_tensor_entry(
    tokens: _TokenRows, map_field: int, tensor_type: _TensorType, values: np.ndarray
) -> np.ndarray:
    """Add the bytes of ``_tensor_entry`` for every row and return their length per row."""
    data, data_mask, data_length = _values_bytes(values, tensor_type)
    has_values = data_length > 0
    tensor_length = np.where(has_values, 1 + _varint_sizes(data_length) + data_length, 0)
    value_length = 1 + _varint_sizes(tensor_length) + tensor_length
    entry_length = len(_VALUES_KEY) + 1 + _varint_sizes(value_length) + value_length

    tokens.add_constant(bytes([map_field << 3 | 2]))
    tokens.add_varints(entry_length)
    tokens.add_constant(_VALUES_KEY + b"\x12")
    tokens.add_varints(value_length)
    tokens.add_constant(bytes([tensor_type.value_field << 3 | 2]))
    tokens.add_varints(tensor_length)
    tokens.add_constant(b"\x0a", present=has_values)
    tokens.add_varints(data_length, present=has_values)
    tokens.add(data, data_mask)

    return 1 + _varint_sizes(entry_length) + entry_length


def _encode_varying_length(
    features: np.ndarray,
    feature_type: _TensorType,
    labels: np.ndarray | None,
    label_type: _TensorType | None,
) -> Iterator[memoryview]:
    """Yield the records of rows that contain Int32 varints, whose lengths depend on the values.

    Each chunk of rows is laid out as ``_TokenRows``, so no Python loop runs per row.
    """
    n_rows, n_columns = features.shape
    value_width = _VARINT_WIDTH if feature_type.itemsize is None else feature_type.itemsize
    max_row_bytes = 2 * _ENTRY_OVERHEAD + n_columns * value_width
    if max_row_bytes > _MAX_PAYLOAD_LENGTH:
        raise ValueError(
            f"rows of {n_columns} values may encode to more than the RecordIO maximum of "
            f"{_MAX_PAYLOAD_LENGTH} bytes. Split the columns or use float32."
        )
    # The int64 copies of a chunk's values, 8 bytes each, are the largest working arrays.
    rows_per_chunk = max(1, _CHUNK_BYTES // (8 * max(n_columns, 1)))

    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        payload = _TokenRows(stop - start)
        payload_length = _add_tensor_entry(payload, 1, feature_type, features[start:stop])
        if labels is not None and label_type is not None:
            label_column = labels[start:stop, None]
            label_length = _add_tensor_entry(payload, 2, label_type, label_column)
            payload_length = payload_length + label_length

        record = _TokenRows(stop - start)
        record.add_constant(_MAGIC_BYTES)
        record.add_uint32(payload_length)
        record.extend(payload)
        padding = np.zeros((stop - start, 3), dtype=np.uint8)
        record.add(padding, np.arange(3) < _padding(payload_length)[:, None])
        yield memoryview(record.compact())


# ---------------------------------------------------------------------------------------------
# Reader
# ---------------------------------------------------------------------------------------------


class _MalformedError(Exception):
    """Invalid protobuf at ``position`` within a record payload."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass
class _Tensor:
    """A parsed tensor message: its type and the payload spans of its repeated fields."""

    tensor_type: _TensorType
    values: list[tuple[int, int, int]] = field(default_factory=list)  # (wire type, start, end)
    keys: list[tuple[int, int, int]] = field(default_factory=list)
    shape: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass
class _Record:
    features: _Tensor
    label: _Tensor | None


def read_dense_tensor(
    source: bytes | bytearray | memoryview | BinaryIO,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read RecordIO-protobuf records into a 2-D feature array and a 1-D label array.

    ``source`` is a bytes-like object or a binary file read to its end. Feature and label dtypes
    are those of the tensors (float32, float64 or int32), and labels are None when no record has
    a label. Sparse rows (``keys`` and ``shape``, as SDK v2's sparse writer makes) are expanded
    to dense rows. Raises RecordIOError on a wrong magic number, a truncated record, an invalid
    length word, malformed protobuf, rows of different widths or types, or labels on only some
    records. An empty source gives a float32 array of shape (0, 0), because no record states
    the width.
    """
    data = bytes(source.read()) if hasattr(source, "read") else bytes(source)
    if not data:
        return np.empty((0, 0), dtype=np.float32), None

    uniform = _read_uniform(data)
    if uniform is not None:
        return uniform
    return _read_records(data)


def _read_uniform(data: bytes) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Read records that share one layout with vectorised numpy, or return None.

    Every record must have the length of the first one and the same bytes outside the feature
    and label values. That is true of float rows written by SDK v2 or this module, and any
    other input goes to the record-by-record reader.
    """
    if len(data) < _HEADER_SIZE:
        return None
    magic, length_word = struct.unpack_from("<II", data, 0)
    if magic != RECORDIO_MAGIC or length_word >> _LENGTH_BITS != _WHOLE:
        return None
    stride = _HEADER_SIZE + length_word + _padding(length_word)
    if len(data) % stride != 0:
        return None

    try:
        record = _parse_record(data[_HEADER_SIZE : _HEADER_SIZE + length_word])
    except _MalformedError:
        return None
    feature_span = _single_packed_span(record.features, expected_count=None)
    if feature_span is None or record.features.keys or record.features.shape:
        return None
    label_span = None
    if record.label is not None:
        label_span = _single_packed_span(record.label, expected_count=1)
        if label_span is None:
            return None

    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, stride)
    value_spans = [feature_span] + ([label_span] if label_span is not None else [])
    if not _same_bytes_outside(rows, value_spans, _HEADER_SIZE + length_word):
        return None

    features = _column_values(rows, feature_span, record.features.tensor_type)
    labels = None
    if record.label is not None and label_span is not None:
        labels = _column_values(rows, label_span, record.label.tensor_type).reshape(-1)
    return features, labels


def _single_packed_span(tensor: _Tensor, expected_count: int | None) -> tuple[int, int] | None:
    """Return the file span of a fixed-size tensor stored as one packed field, or None."""
    itemsize = tensor.tensor_type.itemsize
    if itemsize is None or len(tensor.values) != 1:
        return None
    wire_type, start, end = tensor.values[0]
    if wire_type != 2 or (end - start) % itemsize != 0:
        return None
    if expected_count is not None and (end - start) != expected_count * itemsize:
        return None
    return _HEADER_SIZE + start, _HEADER_SIZE + end


def _same_bytes_outside(rows: np.ndarray, spans: list[tuple[int, int]], record_end: int) -> bool:
    """Check that all rows equal the first row outside the value spans (padding excluded)."""
    start = 0
    for span_start, span_end in [*sorted(spans), (record_end, record_end)]:
        fixed = rows[:, start:span_start]
        if fixed.size and not (fixed == fixed[0]).all():
            return False
        start = span_end
    return True


def _column_values(rows: np.ndarray, span: tuple[int, int], tensor_type: _TensorType) -> np.ndarray:
    values = np.ascontiguousarray(rows[:, span[0] : span[1]]).view(tensor_type.dtype)
    return values.astype(tensor_type.dtype.newbyteorder("="), copy=False)


def _read_records(data: bytes) -> tuple[np.ndarray, np.ndarray | None]:
    """Read records one at a time, the general path that also reports where input is invalid."""
    rows: list[np.ndarray] = []
    labels: list[np.ndarray] = []

    for index, offset, payload in _iter_payloads(data):
        try:
            record = _parse_record(payload)
            row = _dense_row(payload, record.features)
            label = None if record.label is None else _single_label(payload, record.label)
        except _MalformedError as error:
            raise RecordIOError(
                f"malformed protobuf in record {index} (byte offset {offset}), at byte "
                f"{error.position} of its payload: {error.message}"
            ) from None

        if rows:
            _check_like_first(f"record {index} (byte offset {offset})", row, label, rows[0], labels)
        rows.append(row)
        if label is not None:
            labels.append(label)

    features = np.stack(rows)
    label_vector = np.concatenate(labels) if labels else None
    return features, label_vector


def _check_like_first(
    where: str,
    row: np.ndarray,
    label: np.ndarray | None,
    first_row: np.ndarray,
    labels: list[np.ndarray],
) -> None:
    """Raise RecordIOError unless a row and its label have the width and types of record 0."""
    if row.dtype != first_row.dtype:
        raise RecordIOError(
            f"{where} has {_type_name(row.dtype)} features but record 0 has "
            f"{_type_name(first_row.dtype)}. All rows must have one type."
        )
    if row.size != first_row.size:
        raise RecordIOError(
            f"{where} has {row.size} features but record 0 has {first_row.size}. All rows of "
            "a dense tensor must have the same width."
        )
    if (label is None) != (not labels):
        has, lacks = ("has no", "has a") if label is None else ("has a", "has no")
        raise RecordIOError(f"{where} {has} label but record 0 {lacks} label")
    if label is not None and label.dtype != labels[0].dtype:
        raise RecordIOError(
            f"{where} has a {_type_name(label.dtype)} label but record 0 has a "
            f"{_type_name(labels[0].dtype)} label"
        )


def _type_name(dtype: np.dtype) -> str:
    for tensor_type in _TENSOR_TYPES.values():
        if tensor_type.dtype.newbyteorder("=") == dtype.newbyteorder("="):
            return tensor_type.name
    return str(dtype)


def _iter_payloads(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Yield (record index, byte offset, payload) and join multi-part records."""
    offset = 0
    index = 0
    parts: list[bytes] = []
    parts_offset = 0

    while offset < len(data):
        where = f"record {index} (byte offset {offset})"
        if len(data) - offset < _HEADER_SIZE:
            raise RecordIOError(
                f"truncated {where}: {len(data) - offset} bytes left but a record header needs 8"
            )

        magic, length_word = struct.unpack_from("<II", data, offset)
        if magic != RECORDIO_MAGIC:
            raise RecordIOError(
                f"invalid magic number 0x{magic:08x} in {where}, expected "
                f"0x{RECORDIO_MAGIC:08x}. The input is not RecordIO, or the length of the "
                "previous record is wrong."
            )
        flag = length_word >> _LENGTH_BITS
        length = length_word & _MAX_PAYLOAD_LENGTH
        end = offset + _HEADER_SIZE + length
        padded_end = end + _padding(length)
        if padded_end > len(data):
            raise RecordIOError(
                f"truncated {where}: the length word gives {length} payload bytes plus "
                f"{_padding(length)} padding, but only {len(data) - offset - _HEADER_SIZE} "
                "bytes follow the header"
            )
        chunk = data[offset + _HEADER_SIZE : end]

        if flag == _WHOLE and not parts:
            yield index, offset, chunk
            index += 1
        elif flag == _FIRST_PART and not parts:
            parts = [chunk]
            parts_offset = offset
        elif flag in (_MIDDLE_PART, _LAST_PART) and parts:
            parts += [_MAGIC_BYTES, chunk]
            if flag == _LAST_PART:
                yield index, parts_offset, b"".join(parts)
                index += 1
                parts = []
        else:
            raise RecordIOError(
                f"invalid length word 0x{length_word:08x} in {where}: continuation flag {flag} "
                + ("inside a multi-part record" if parts else "outside a multi-part record")
            )
        offset = padded_end

    if parts:
        raise RecordIOError(
            f"truncated record {index} (byte offset {parts_offset}): the input ends inside a "
            "multi-part record"
        )


# --- protobuf parsing -------------------------------------------------------------------------


def _read_varint(payload: bytes, position: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    start = position
    while True:
        if position >= end:
            raise _MalformedError("truncated varint", start)
        byte = payload[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, position
        shift += 7
        if shift >= 70:
            raise _MalformedError("varint longer than 10 bytes", start)


def _iter_fields(payload: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field number, wire type, value start, value end) of each field in a message."""
    position = start
    while position < end:
        key_start = position
        key, position = _read_varint(payload, position, end)
        field_number, wire_type = key >> 3, key & 7
        if field_number == 0:
            raise _MalformedError("field number 0", key_start)

        if wire_type == 0:
            _, value_end = _read_varint(payload, position, end)
        elif wire_type == 1:
            value_end = position + 8
        elif wire_type == 5:
            value_end = position + 4
        elif wire_type == 2:
            length, position = _read_varint(payload, position, end)
            value_end = position + length
        else:
            message = f"unsupported wire type {wire_type} of field {field_number}"
            raise _MalformedError(message, key_start)

        if value_end > end:
            message = f"field {field_number} runs past the end of its message"
            raise _MalformedError(message, key_start)
        yield field_number, wire_type, position, value_end
        position = value_end


def _parse_record(payload: bytes) -> _Record:
    """Parse an ``aialgs.data.Record`` and return its ``values`` feature and label tensors."""
    spans: dict[int, tuple[int, int]] = {}
    for field_number, wire_type, start, end in _iter_fields(payload, 0, len(payload)):
        if field_number not in (1, 2):
            continue  # uid, metadata, configuration and unknown fields
        if wire_type != 2:
            message = f"map field {field_number} has wire type {wire_type}, expected 2"
            raise _MalformedError(message, start)
        key, value_span = _parse_map_entry(payload, start, end)
        if key == "values":
            spans[field_number] = value_span  # a repeated map key keeps its last value

    if 1 not in spans:
        raise _MalformedError('missing features["values"] entry', 0)
    features = _parse_value(payload, *spans[1], 'features["values"]')
    label = _parse_value(payload, *spans[2], 'label["values"]') if 2 in spans else None
    return _Record(features, label)


def _parse_map_entry(payload: bytes, start: int, end: int) -> tuple[str, tuple[int, int]]:
    key = ""
    value_span = (end, end)  # a missing value is an empty Value message
    for field_number, wire_type, value_start, value_end in _iter_fields(payload, start, end):
        if field_number == 1 and wire_type == 2:
            try:
                key = payload[value_start:value_end].decode("utf-8")
            except UnicodeDecodeError:
                raise _MalformedError("map key is not valid UTF-8", value_start) from None
        elif field_number == 2 and wire_type == 2:
            value_span = (value_start, value_end)
    return key, value_span


def _parse_value(payload: bytes, start: int, end: int, name: str) -> _Tensor:
    """Parse an ``aialgs.data.Value``, whose tensor fields form a oneof."""
    tensor: _Tensor | None = None
    for field_number, wire_type, value_start, value_end in _iter_fields(payload, start, end):
        if field_number == _BYTES_VALUE_FIELD:
            message = f"{name} contains Bytes, expected a Float32, Float64 or Int32 tensor"
            raise _MalformedError(message, value_start)
        tensor_type = _TENSOR_TYPES.get(field_number)
        if tensor_type is None:
            continue
        if wire_type != 2:
            message = f"{name} tensor has wire type {wire_type}, expected 2"
            raise _MalformedError(message, value_start)
        if tensor is None or tensor.tensor_type is not tensor_type:
            tensor = _Tensor(tensor_type)  # another oneof member replaces the previous one
        _parse_tensor(payload, value_start, value_end, tensor)

    if tensor is None:
        raise _MalformedError(f"{name} is missing its tensor", start)
    return tensor


def _parse_tensor(payload: bytes, start: int, end: int, tensor: _Tensor) -> None:
    """Add the spans of the repeated fields of one tensor message to ``tensor``.

    A field that occurs several times adds all its values, as protobuf merging does.
    """
    for field_number, wire_type, value_start, value_end in _iter_fields(payload, start, end):
        if field_number == 1:
            expected = (2, tensor.tensor_type.wire_type)
            target = tensor.values
        elif field_number in (2, 3):
            expected = (2, 0)
            target = tensor.keys if field_number == 2 else tensor.shape
        else:
            continue
        if wire_type not in expected:
            raise _MalformedError(
                f"{tensor.tensor_type.name}Tensor field {field_number} has wire type {wire_type}",
                value_start,
            )
        target.append((wire_type, value_start, value_end))


def _decode_varints(raw: bytes, position: int) -> np.ndarray:
    """Decode packed varints into uint64 values."""
    data = np.frombuffer(raw, dtype=np.uint8)
    if data.size == 0:
        return np.empty(0, dtype=np.uint64)
    if data[-1] & 0x80:
        raise _MalformedError("truncated varint in packed field", position)

    ends = np.flatnonzero(data < 0x80)
    starts = np.concatenate(([0], ends[:-1] + 1))
    sizes = ends - starts + 1
    if sizes.max() > _VARINT_WIDTH:
        raise _MalformedError("varint longer than 10 bytes in packed field", position)

    byte_index = np.arange(data.size) - np.repeat(starts, sizes)
    groups = (data & 0x7F).astype(np.uint64) << (7 * byte_index).astype(np.uint64)
    return np.add.reduceat(groups, starts)


def _decode_spans(
    payload: bytes, spans: list[tuple[int, int, int]], tensor_type: _TensorType | None
) -> np.ndarray:
    """Decode repeated values, packed or not. A ``tensor_type`` of None means uint64 varints."""
    parts = []
    for wire_type, start, end in spans:
        raw = payload[start:end]
        if tensor_type is not None and tensor_type.itemsize is not None:
            if len(raw) % tensor_type.itemsize:
                raise _MalformedError(
                    f"packed {tensor_type.name} values take {len(raw)} bytes, not a multiple "
                    f"of {tensor_type.itemsize}",
                    start,
                )
            parts.append(np.frombuffer(raw, dtype=tensor_type.dtype))
            continue

        if wire_type == 0:
            value, _ = _read_varint(payload, start, end)
            varints = np.array([value], dtype=np.uint64)
        else:
            varints = _decode_varints(raw, start)
        if tensor_type is _INT32:
            # protobuf keeps the low 32 bits of an int32 varint
            parts.append(varints.astype(np.uint32).view(np.int32))
        else:
            parts.append(varints)

    if not parts:
        dtype = np.uint64 if tensor_type is None else tensor_type.dtype
        return np.empty(0, dtype=dtype)
    return np.concatenate(parts)


def _dense_row(payload: bytes, tensor: _Tensor) -> np.ndarray:
    """Return the tensor as one dense row, expanding sparse ``keys`` with ``shape``."""
    values = _decode_spans(payload, tensor.values, tensor.tensor_type)
    values = values.astype(tensor.tensor_type.dtype.newbyteorder("="), copy=False)
    keys = _decode_spans(payload, tensor.keys, None)
    shape = _decode_spans(payload, tensor.shape, None)
    position = tensor.values[0][1] if tensor.values else 0

    if shape.size == 0 and keys.size == 0:
        return values
    if keys.size == 0 and int(np.prod(shape)) == values.size:
        return values  # a dense tensor that states its shape

    if shape.size != 1:
        raise _MalformedError(f"sparse features need a 1-D shape, got {shape.tolist()}", position)
    width = int(shape[0])
    if keys.size != values.size:
        raise _MalformedError(f"{keys.size} keys for {values.size} values", position)
    if keys.size and int(keys.max()) >= width:
        message = f"key {int(keys.max())} is out of range for shape [{width}]"
        raise _MalformedError(message, position)
    row = np.zeros(width, dtype=values.dtype)
    row[keys.astype(np.intp)] = values
    return row


def _single_label(payload: bytes, tensor: _Tensor) -> np.ndarray:
    label = _dense_row(payload, tensor)
    if label.size != 1:
        position = tensor.values[0][1] if tensor.values else 0
        message = f'label["values"] contains {label.size} values, expected 1'
        raise _MalformedError(message, position)
    return label
