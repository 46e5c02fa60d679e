"""The RecordIO-protobuf codec against SageMaker Python SDK v2, the reference writer."""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from sagemaker.amazon.common import write_numpy_to_dense_tensor as sdk_write  # noqa: E402
from sagemaker.amazon.common import (  # noqa: E402
    write_spmatrix_to_sparse_tensor as sdk_write_sparse,
)

from learner_pipeline import recordio  # noqa: E402
from learner_pipeline.recordio import (  # noqa: E402
    RECORDIO_MAGIC,
    RecordIOError,
    encode_dense_tensor,
    encode_dense_tensor_buffer,
    encoded_row_size,
    read_dense_tensor,
    write_numpy_to_dense_tensor,
)

DTYPES = [np.float32, np.float64, np.int64]
LABEL_DTYPES = [None, np.float32, np.float64, np.int64]
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# float32 bit patterns the tests inject: +0, -0, smallest subnormal, largest subnormal,
# smallest normal, -1, +inf, -inf, quiet NaN, signalling NaN, negative signalling NaN with payload
SPECIAL_FLOAT32_BITS = [
    0x00000000, 0x80000000, 0x00000001, 0x007FFFFF, 0x00800000, 0xBF800000,
    0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFFA00005,
]
SPECIAL_FLOAT64_BITS = [
    0x0000000000000000, 0x8000000000000000, 0x0000000000000001, 0x000FFFFFFFFFFFFF,
    0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0x7FF0000000000001,
]
SPECIAL_INT64 = [0, -1, 1, 127, 128, -128, 2**31 - 1, -(2**31), 16383, 16384]


def sdk_encode(array: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    buffer = io.BytesIO()
    sdk_write(buffer, array, labels)
    return buffer.getvalue()


def element_strategy(dtype: type) -> st.SearchStrategy:
    if dtype is np.int64:
        return st.integers(-(2**31), 2**31 - 1)
    return st.floats(width=32 if dtype is np.float32 else 64)


def with_special_values(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return a copy of ``values`` with special values written at random positions."""
    flat = values.copy().reshape(-1)
    if flat.size == 0:
        return values.copy()
    if flat.dtype == np.float32:
        specials = np.array(SPECIAL_FLOAT32_BITS, dtype=np.uint32).view(np.float32)
    elif flat.dtype == np.float64:
        specials = np.array(SPECIAL_FLOAT64_BITS, dtype=np.uint64).view(np.float64)
    else:
        specials = np.array(SPECIAL_INT64, dtype=np.int64)
    positions = rng.choice(flat.size, size=min(flat.size, specials.size), replace=False)
    flat[positions] = specials[: positions.size]
    return flat.reshape(values.shape)


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    if dtype is np.int64:
        values = rng.integers(-(2**31), 2**31, size=shape, dtype=np.int64)
    else:
        values = (rng.standard_normal(shape) * 1e3).astype(dtype)
    return with_special_values(values, rng)


@st.composite
def small_arrays(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray | None]:
    dtype = draw(st.sampled_from(DTYPES))
    shape = (draw(st.integers(1, 5)), draw(st.integers(0, 40)))
    array = draw(hnp.arrays(dtype, shape, elements=element_strategy(dtype)))
    label_dtype = draw(st.sampled_from(LABEL_DTYPES))
    labels = None
    if label_dtype is not None:
        labels = draw(hnp.arrays(label_dtype, shape[0], elements=element_strategy(label_dtype)))
    return array, labels


@st.composite
def wide_arrays(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray | None]:
    # Widths around the points where a protobuf length varint grows by a byte.
    dtype = draw(st.sampled_from(DTYPES))
    width = draw(st.sampled_from([1, 31, 32, 784, 3000, 4095, 4096, 4097]))
    rows = draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    array = random_array(rng, (rows, width), dtype)
    label_dtype = draw(st.sampled_from(LABEL_DTYPES))
    labels = None if label_dtype is None else random_array(rng, (rows,), label_dtype)
    return array, labels


# --- writer: bytes ------------------------------------------------------------------------------


@SETTINGS
@given(small_arrays())
def test_encode_small_matches_sdk(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    array, labels = case
    assert encode_dense_tensor(array, labels) == sdk_encode(array, labels)


@settings(max_examples=30, deadline=None)
@given(wide_arrays())
def test_encode_wide_matches_sdk(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    array, labels = case
    assert encode_dense_tensor(array, labels) == sdk_encode(array, labels)


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_encode_special_values_match_sdk(dtype: type, label_dtype: type | None) -> None:
    # Given every special value in each column position of a short matrix
    rng = np.random.default_rng(7)
    array = random_array(rng, (40, 13), dtype)
    labels = None if label_dtype is None else random_array(rng, (40,), label_dtype)

    # When / Then
    assert encode_dense_tensor(array, labels) == sdk_encode(array, labels)


def test_encode_signalling_nan_quieted_like_sdk() -> None:
    array = np.array([[0x7F800001, 0xFF800001]], dtype=np.uint32).view(np.float32)
    labels = np.array([0x7F800002], dtype=np.uint32).view(np.float32)

    encoded = encode_dense_tensor(array, labels)

    assert encoded == sdk_encode(array, labels)
    assert struct.pack("<2I", 0x7FC00001, 0xFFC00001) in encoded


def test_encode_large_chunked_matches_sdk() -> None:
    # Given more rows than fit in one chunk, so chunk boundaries are crossed
    rng = np.random.default_rng(3)
    array = rng.random((700, 784), dtype=np.float32)
    labels = (rng.random(700) < 0.5).astype(np.float32)

    assert encode_dense_tensor(array, labels) == sdk_encode(array, labels)


def test_encode_int_chunked_matches_sdk() -> None:
    rng = np.random.default_rng(4)
    array = rng.integers(-300, 300, size=(300, 600), dtype=np.int64)
    labels = rng.integers(-5, 5, size=300, dtype=np.int64)

    assert encode_dense_tensor(array, labels) == sdk_encode(array, labels)


def test_encode_fortran_order_matches_sdk() -> None:
    array = np.asfortranarray(np.arange(60, dtype=np.float64).reshape(6, 10))

    assert encode_dense_tensor(array) == sdk_encode(array)


def test_encode_column_slice_matches_sdk() -> None:
    array = np.arange(80, dtype=np.float32).reshape(8, 10)[:, ::3]

    assert encode_dense_tensor(array) == sdk_encode(array)


def test_encode_empty_rows_writes_nothing() -> None:
    array = np.zeros((0, 5), dtype=np.float32)

    assert encode_dense_tensor(array, np.zeros(0, dtype=np.float32)) == b""


def test_write_file_matches_encode(tmp_path) -> None:
    array = np.random.default_rng(5).random((50, 20))
    path = tmp_path / "shard.rec"

    with path.open("wb") as file:
        write_numpy_to_dense_tensor(file, array)

    assert path.read_bytes() == encode_dense_tensor(array)


# --- writer: one buffer -------------------------------------------------------------------------


@SETTINGS
@given(st.one_of(small_arrays(), wide_arrays()))
def test_buffer_matches_sdk(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    array, labels = case
    assert bytes(encode_dense_tensor_buffer(array, labels)) == sdk_encode(array, labels)


@pytest.mark.parametrize("label_dtype", LABEL_DTYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_buffer_special_values_match_sdk(dtype: type, label_dtype: type | None) -> None:
    rng = np.random.default_rng(8)
    array = random_array(rng, (40, 13), dtype)
    labels = None if label_dtype is None else random_array(rng, (40,), label_dtype)

    assert bytes(encode_dense_tensor_buffer(array, labels)) == sdk_encode(array, labels)


def test_buffer_many_chunks_matches_sdk() -> None:
    # Given about 2.2 MB of output, so the buffer is filled in three chunks
    rng = np.random.default_rng(9)
    array = rng.random((700, 784), dtype=np.float32)
    labels = (rng.random(700) < 0.5).astype(np.float32)

    assert bytes(encode_dense_tensor_buffer(array, labels)) == sdk_encode(array, labels)


def test_buffer_signalling_nan_quieted() -> None:
    array = np.array([[0x7F800001, 0xFF800001]], dtype=np.uint32).view(np.float32)
    labels = np.array([0x7F800002], dtype=np.uint32).view(np.float32)

    encoded = bytes(encode_dense_tensor_buffer(array, labels))

    assert encoded == sdk_encode(array, labels)


def test_buffer_leaves_input_unchanged() -> None:
    array = np.array([[0x7F800001, 1]], dtype=np.uint32).view(np.float32)
    before = array.tobytes()

    encode_dense_tensor_buffer(array)

    assert array.tobytes() == before


def test_buffer_is_flat_bytes_view() -> None:
    view = encode_dense_tensor_buffer(np.ones((3, 4), dtype=np.float32), np.ones(3, np.float32))

    assert view.format == "B"
    assert view.ndim == 1
    assert view.c_contiguous
    assert len(view) == 3 * encoded_row_size(4, np.float32, True)


def test_buffer_empty_rows() -> None:
    view = encode_dense_tensor_buffer(np.zeros((0, 5), dtype=np.float32))

    assert len(view) == 0


def test_buffer_int_empty_rows() -> None:
    view = encode_dense_tensor_buffer(np.zeros((0, 5), dtype=np.int64))

    assert len(view) == 0


# --- writer: rejections -----------------------------------------------------------------------

BAD_INPUTS = {
    "array 1-D": (np.zeros(4, dtype=np.float32), None),
    "array 3-D": (np.zeros((2, 2, 2), dtype=np.float32), None),
    "labels 2-D": (np.zeros((2, 3), dtype=np.float32), np.zeros((2, 1), dtype=np.float32)),
    "label count": (np.zeros((2, 3), dtype=np.float32), np.zeros(4, dtype=np.float32)),
    "array int32": (np.zeros((2, 3), dtype=np.int32), None),
    "array bool": (np.zeros((2, 3), dtype=bool), None),
    "array float16": (np.zeros((2, 3), dtype=np.float16), None),
    "array big-endian": (np.zeros((2, 3), dtype=">f4"), None),
    "labels int32": (np.zeros((2, 3), dtype=np.float32), np.zeros(2, dtype=np.int32)),
    "feature above int32": (np.array([[2**31]], dtype=np.int64), None),
    "label below int32": (np.zeros((1, 1), dtype=np.int64), np.array([-(2**31) - 1])),
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_sdk_rejects_bad_input(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    # Checks that each case really is an SDK error, so the test below compares like with like.
    with pytest.raises(ValueError):
        sdk_encode(*case)


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_encode_rejects_bad_input(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    with pytest.raises(ValueError):
        encode_dense_tensor(*case)


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_buffer_rejects_bad_input(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    with pytest.raises(ValueError):
        encode_dense_tensor_buffer(*case)


def test_encode_out_of_range_message_like_sdk() -> None:
    array = np.array([[1, 2**31 + 5]], dtype=np.int64)

    with pytest.raises(ValueError) as sdk_error:
        sdk_encode(array)
    with pytest.raises(ValueError) as our_error:
        encode_dense_tensor(array)

    assert str(our_error.value) == str(sdk_error.value)


def test_encode_dtype_message_like_sdk() -> None:
    with pytest.raises(ValueError, match="Unsupported dtype int32 on array"):
        encode_dense_tensor(np.zeros((1, 1), dtype=np.int32))


def test_encode_labels_per_column_rejected() -> None:
    # SDK v2 accepts a label count equal to the column count. This writer requires the row count.
    array = np.zeros((3, 5), dtype=np.float32)

    with pytest.raises(ValueError, match="one label per row"):
        encode_dense_tensor(array, np.zeros(5, dtype=np.float32))


def test_write_rejected_input_writes_nothing() -> None:
    buffer = io.BytesIO()

    with pytest.raises(ValueError):
        write_numpy_to_dense_tensor(buffer, np.array([[1, 2, 2**40]], dtype=np.int64))

    assert buffer.getvalue() == b""


# --- encoded_row_size ---------------------------------------------------------------------------


@pytest.mark.parametrize("label_dtype", [None, np.float32, np.float64])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [0, 1, 31, 32, 784, 4096])
def test_row_size_matches_encoding(width: int, dtype: type, label_dtype: type | None) -> None:
    array = np.ones((3, width), dtype=dtype)
    labels = None if label_dtype is None else np.ones(3, dtype=label_dtype)

    size = encoded_row_size(width, dtype, labels is not None, label_dtype=label_dtype)

    assert 3 * size == len(encode_dense_tensor(array, labels))


def test_row_size_label_dtype_defaults_to_features() -> None:
    array = np.ones((2, 10), dtype=np.float64)

    size = encoded_row_size(10, np.float64, True)

    assert 2 * size == len(encode_dense_tensor(array, np.ones(2, dtype=np.float64)))


def test_row_size_rejects_int64() -> None:
    with pytest.raises(ValueError, match="varint"):
        encoded_row_size(10, np.int64, False)


def test_row_size_rejects_int64_labels() -> None:
    with pytest.raises(ValueError, match="varint"):
        encoded_row_size(10, np.float32, True, label_dtype=np.int64)


# --- reader: round trips -------------------------------------------------------------------------


def assert_read_matches(
    encoded: bytes, array: np.ndarray, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    features, read_labels = read_dense_tensor(encoded)

    assert features.shape == array.shape
    assert np.array_equal(features, array.astype(features.dtype), equal_nan=True)
    if labels is None:
        assert read_labels is None
    else:
        assert read_labels is not None
        assert np.array_equal(read_labels, labels.astype(read_labels.dtype), equal_nan=True)
    return features, read_labels


@SETTINGS
@given(st.one_of(small_arrays(), wide_arrays()))
def test_read_sdk_output(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    # Given bytes written by the SDK
    array, labels = case
    encoded = sdk_encode(array, labels)

    # When read back, then values match and re-encoding gives the same bytes
    features, read_labels = assert_read_matches(encoded, array, labels)
    widened = features.astype(np.int64) if features.dtype == np.int32 else features
    if read_labels is not None and read_labels.dtype == np.int32:
        read_labels = read_labels.astype(np.int64)
    assert encode_dense_tensor(widened, read_labels) == encoded


@SETTINGS
@given(st.one_of(small_arrays(), wide_arrays()))
def test_read_paths_agree(case: tuple[np.ndarray, np.ndarray | None]) -> None:
    # The vectorised reader and the record-by-record reader give identical arrays.
    encoded = encode_dense_tensor(*case)

    fast_features, fast_labels = read_dense_tensor(encoded)
    slow_features, slow_labels = recordio._read_records(encoded)

    assert fast_features.dtype == slow_features.dtype
    assert fast_features.tobytes() == slow_features.tobytes()
    assert (fast_labels is None) == (slow_labels is None)
    if fast_labels is not None and slow_labels is not None:
        assert fast_labels.tobytes() == slow_labels.tobytes()


def test_read_dtypes_are_tensor_types() -> None:
    encoded = encode_dense_tensor(np.ones((2, 3), dtype=np.int64), np.ones(2, dtype=np.float64))

    features, labels = read_dense_tensor(encoded)

    assert features.dtype == np.int32
    assert labels is not None and labels.dtype == np.float64


def test_read_uniform_path_used_for_float_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given float rows, the record-by-record reader must not run
    encoded = encode_dense_tensor(np.ones((4, 784), dtype=np.float32), np.ones(4, dtype=np.float32))
    monkeypatch.setattr(recordio, "_read_records", lambda data: pytest.fail("slow path used"))

    features, _ = read_dense_tensor(encoded)

    assert features.shape == (4, 784)


def test_read_zero_width_rows() -> None:
    encoded = sdk_encode(np.zeros((3, 0), dtype=np.float32), np.ones(3, dtype=np.float32))

    features, labels = read_dense_tensor(encoded)

    assert features.shape == (3, 0)
    assert labels is not None and labels.tolist() == [1.0, 1.0, 1.0]


def test_read_empty_input() -> None:
    features, labels = read_dense_tensor(b"")

    assert features.shape == (0, 0)
    assert labels is None


def test_read_binary_file(tmp_path) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    path = tmp_path / "sdk.rec"
    with path.open("wb") as file:
        sdk_write(file, array, np.arange(3, dtype=np.float32))

    with path.open("rb") as file:
        features, labels = read_dense_tensor(file)

    assert np.array_equal(features, array)
    assert labels is not None and labels.tolist() == [0.0, 1.0, 2.0]


def test_read_sdk_sparse_output() -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    dense = np.array([[0, 1.5, 0, 0], [0, 0, 0, 0], [2, 0, 0, -3]], dtype=np.float32)
    buffer = io.BytesIO()
    sdk_write_sparse(buffer, scipy_sparse.csr_matrix(dense), np.array([1, 0, 1], dtype=np.float32))

    features, labels = read_dense_tensor(buffer.getvalue())

    assert np.array_equal(features, dense)
    assert labels is not None and labels.tolist() == [1.0, 0.0, 1.0]


def test_read_multipart_record() -> None:
    # Given a row whose payload contains the magic number at a 4-byte boundary, framed the way
    # MXNet's writer frames it: split there, the magic dropped, continuation flags 1 then 3
    row = np.zeros((1, 784), dtype=np.float32)
    row[0, 0] = np.array([RECORDIO_MAGIC], dtype=np.uint32).view(np.float32)[0]
    whole = encode_dense_tensor(row)
    payload = whole[8 : 8 + struct.unpack_from("<I", whole, 4)[0]]
    split = payload.index(struct.pack("<I", RECORDIO_MAGIC))
    assert split % 4 == 0
    first, rest = payload[:split], payload[split + 4 :]
    framed = struct.pack("<II", RECORDIO_MAGIC, 1 << 29 | len(first)) + first
    framed += struct.pack("<II", RECORDIO_MAGIC, 3 << 29 | len(rest)) + rest + bytes(-len(rest) % 4)

    # When
    features, _ = read_dense_tensor(framed + whole)

    # Then both records hold the row
    assert features.view(np.uint32)[:, 0].tolist() == [RECORDIO_MAGIC, RECORDIO_MAGIC]
    assert np.array_equal(features[0], features[1])


# --- reader: rejections ----------------------------------------------------------------------


def three_records() -> bytes:
    array = np.arange(15, dtype=np.float32).reshape(3, 5)
    return encode_dense_tensor(array, np.ones(3, np.float32))


def record_offsets(data: bytes) -> list[int]:
    offsets = [0]
    while True:
        length = struct.unpack_from("<I", data, offsets[-1] + 4)[0] & ((1 << 29) - 1)
        following = offsets[-1] + 8 + length + (-length % 4)
        if following >= len(data):
            return offsets
        offsets.append(following)


def payload_record(payload: bytes) -> bytes:
    return struct.pack("<II", RECORDIO_MAGIC, len(payload)) + payload + bytes(-len(payload) % 4)


def test_reject_wrong_magic_first_record() -> None:
    data = b"\x00\x00\x00\x00" + three_records()[4:]

    expected = r"invalid magic number 0x00000000 in record 0 \(byte offset 0\)"
    with pytest.raises(RecordIOError, match=expected):
        read_dense_tensor(data)


def test_reject_wrong_magic_later_record() -> None:
    data = bytearray(three_records())
    offset = record_offsets(bytes(data))[2]
    data[offset] ^= 0xFF

    expected = rf"invalid magic number .* record 2 \(byte offset {offset}\)"
    with pytest.raises(RecordIOError, match=expected):
        read_dense_tensor(bytes(data))


def test_reject_truncated_header() -> None:
    data = three_records() + struct.pack("<I", RECORDIO_MAGIC)

    with pytest.raises(RecordIOError, match=r"truncated record 3 .*4 bytes left"):
        read_dense_tensor(data)


def test_reject_truncated_payload() -> None:
    data = three_records()[:-7]

    with pytest.raises(RecordIOError, match=r"truncated record 2"):
        read_dense_tensor(data)


def test_reject_length_past_end() -> None:
    data = bytearray(three_records())
    struct.pack_into("<I", data, 4, 1_000_000)

    with pytest.raises(RecordIOError, match=r"truncated record 0 .*1000000 payload bytes"):
        read_dense_tensor(bytes(data))


def test_reject_length_too_short() -> None:
    # Given a length word 4 bytes short, the reader lands inside the payload
    data = bytearray(three_records())
    length = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, 4, length - 4)

    with pytest.raises(RecordIOError, match=r"record 0 \(byte offset 0\)"):
        read_dense_tensor(bytes(data))


def test_reject_invalid_continuation_flag() -> None:
    data = bytearray(three_records())
    length = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, 4, 5 << 29 | length)

    with pytest.raises(RecordIOError, match=r"invalid length word 0xa[0-9a-f]{7} in record 0"):
        read_dense_tensor(bytes(data))


def test_reject_continuation_without_start() -> None:
    data = bytearray(three_records())
    length = struct.unpack_from("<I", data, 4)[0]
    struct.pack_into("<I", data, 4, 3 << 29 | length)

    with pytest.raises(RecordIOError, match="outside a multi-part record"):
        read_dense_tensor(bytes(data))


def test_reject_unfinished_multipart() -> None:
    data = bytearray(three_records())
    offset = record_offsets(bytes(data))[2]
    length = struct.unpack_from("<I", data, offset + 4)[0]
    struct.pack_into("<I", data, offset + 4, 1 << 29 | length)

    with pytest.raises(RecordIOError, match="ends inside a multi-part record"):
        read_dense_tensor(bytes(data))


def test_reject_different_widths() -> None:
    data = encode_dense_tensor(np.ones((2, 3), np.float32))
    data += encode_dense_tensor(np.ones((1, 4), np.float32))

    with pytest.raises(RecordIOError, match=r"record 2 .* has 4 features but record 0 has 3"):
        read_dense_tensor(data)


def test_reject_different_types() -> None:
    data = encode_dense_tensor(np.ones((1, 3), np.float32))
    data += encode_dense_tensor(np.ones((1, 3), np.float64))

    with pytest.raises(RecordIOError, match="record 1 .* has Float64 features but record 0"):
        read_dense_tensor(data)


def test_reject_labels_on_some_records() -> None:
    labelled = encode_dense_tensor(np.ones((1, 3), np.float32), np.ones(1, np.float32))
    data = labelled + encode_dense_tensor(np.ones((1, 3), np.float32))

    with pytest.raises(RecordIOError, match="record 1 .* has no label but record 0 has a label"):
        read_dense_tensor(data)


def test_reject_label_with_two_values() -> None:
    label_entry = b"\x0a\x06values\x12\x0c\x12\x0a\x0a\x08" + bytes(8)
    features = encode_dense_tensor(np.ones((1, 2), np.float32))[8:]
    payload = features + b"\x12" + bytes([len(label_entry)]) + label_entry

    with pytest.raises(RecordIOError, match=r'label\["values"\] contains 2 values'):
        read_dense_tensor(payload_record(payload))


def test_reject_entry_past_end() -> None:
    data = bytearray(three_records())
    data[9] = 0x7F  # features map entry length

    with pytest.raises(RecordIOError, match=r"malformed protobuf in record 0 .*runs past the end"):
        read_dense_tensor(bytes(data))


def test_reject_group_wire_type() -> None:
    with pytest.raises(RecordIOError, match="unsupported wire type 3"):
        read_dense_tensor(payload_record(b"\x0b\x0c"))


def test_reject_truncated_varint() -> None:
    with pytest.raises(RecordIOError, match="truncated varint"):
        read_dense_tensor(payload_record(b"\x0a\xff\xff"))


def test_reject_missing_features() -> None:
    labels_only = b"\x12\x12\x0a\x06values\x12\x08\x12\x06\x0a\x04" + bytes(4)

    with pytest.raises(RecordIOError, match=r'missing features\["values"\] entry'):
        read_dense_tensor(payload_record(labels_only))


def test_reject_partial_float() -> None:
    # Given packed Float32 values of 3 bytes
    entry = b"\x0a\x06values\x12\x07\x12\x05\x0a\x03" + bytes(3)

    with pytest.raises(RecordIOError, match="3 bytes, not a multiple of 4"):
        read_dense_tensor(payload_record(b"\x0a" + bytes([len(entry)]) + entry))


def test_reject_bytes_value() -> None:
    entry = b"\x0a\x06values\x12\x05\x4a\x03\x0a\x01x"

    with pytest.raises(RecordIOError, match="contains Bytes"):
        read_dense_tensor(payload_record(b"\x0a" + bytes([len(entry)]) + entry))


def test_reject_value_without_tensor() -> None:
    entry = b"\x0a\x06values\x12\x00"

    with pytest.raises(RecordIOError, match="is missing its tensor"):
        read_dense_tensor(payload_record(b"\x0a" + bytes([len(entry)]) + entry))


def test_reject_is_value_error() -> None:
    with pytest.raises(ValueError):
        read_dense_tensor(b"not recordio")
