"""Turn a loaded dataset into RecordIO shards, the stored test split and the run manifest."""

from __future__ import annotations

import io
import math
from collections.abc import Buffer, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from learner_pipeline.dataset import Dataset, Split, binary_labels, check_classes
from learner_pipeline.recordio import encode_dense_tensor_buffer, encoded_row_size
from learner_pipeline.runs import RunLayout

# Called with (key, body, content type) for every object prepare writes. The body is a bytes-like
# object (a memoryview over a numpy array) that is freed once the call returns, so the sink must
# upload or copy it before returning. botocore accepts it only wrapped in a file object.
Sink = Callable[[str, Buffer, str], None]

RECORDIO_CONTENT_TYPE = "application/x-recordio-protobuf"


@dataclass(frozen=True)
class PrepareOptions:
    positive_label: int
    shard_bytes: int
    training_instance_count: int = 1


def shard_bounds(row_count: int, row_bytes: int, shard_bytes: int, min_shards: int = 1) -> list[tuple[int, int]]:
    """Split row_count rows into contiguous shards of at most shard_bytes, and at least min_shards of them."""
    rows_per_shard = max(1, shard_bytes // row_bytes)
    shard_count = max(math.ceil(row_count / rows_per_shard), min(min_shards, row_count), 1)
    edges = np.linspace(0, row_count, shard_count + 1).round().astype(int)
    return [(int(start), int(stop)) for start, stop in zip(edges[:-1], edges[1:], strict=True)]


def write_channel(split: Split, labels: np.ndarray, channel: str, layout: RunLayout, options: PrepareOptions,
                  sink: Sink) -> list[str]:
    """Encode one split as RecordIO shards; only one shard's bytes exist at a time."""
    min_shards = options.training_instance_count if channel == "train" else 1
    row_bytes = encoded_row_size(split.images.shape[1], np.float32, with_label=True)
    keys = []
    for index, (start, stop) in enumerate(shard_bounds(len(labels), row_bytes, options.shard_bytes, min_shards)):
        key = layout.shard_key(channel, index)
        # Passed without a name, so the shard's buffer is freed before the next one is encoded.
        sink(key, encode_dense_tensor_buffer(split.images[start:stop], labels[start:stop]), RECORDIO_CONTENT_TYPE)
        keys.append(key)
    return keys


def npy_buffer(array: np.ndarray) -> memoryview:
    """Encode an array in the .npy format into one new buffer, with the bytes np.save writes.

    The header goes into a small BytesIO and the data is copied once, straight into the
    buffer, where np.save into a BytesIO would copy it in pieces and grow the BytesIO.
    Raises ValueError for object arrays, as np.save does with allow_pickle=False.
    """
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise ValueError(f"cannot write an array of dtype {array.dtype} to .npy without pickle")
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = array.copy(order="C")

    header_data = np.lib.format.header_data_from_array_1_0(array)
    header = io.BytesIO()
    # np.save writes version 1.0 unless the header is longer than 65,535 bytes.
    try:
        np.lib.format.write_array_header_1_0(header, header_data)
    except ValueError:
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, header_data)

    # A Fortran-ordered array is stored column by column, which is its transpose in C order.
    data = array.T if header_data["fortran_order"] else array
    header_bytes = header.getbuffer()
    output = np.empty(len(header_bytes) + array.nbytes, dtype=np.uint8)
    output[: len(header_bytes)] = np.frombuffer(header_bytes, dtype=np.uint8)
    output[len(header_bytes) :] = data.reshape(-1).view(np.uint8)
    return memoryview(output).cast("B")


def prepare_run(dataset: Dataset, layout: RunLayout, options: PrepareOptions, sink: Sink,
                source: dict[str, Any]) -> dict[str, Any]:
    """Write the run's training data through sink and return the manifest, which the caller writes last."""
    check_classes(dataset, options.positive_label)

    shards = {}
    positives = {}
    for split in (dataset.train, dataset.validation):
        labels = binary_labels(split.labels, options.positive_label)
        shards[split.name] = write_channel(split, labels, split.name, layout, options, sink)
        positives[split.name] = int(labels.sum())

    sink(layout.test_features_key, npy_buffer(dataset.test.images), "application/octet-stream")
    sink(layout.test_labels_key, npy_buffer(dataset.test.labels), "application/octet-stream")
    positives["test"] = int((dataset.test.labels == options.positive_label).sum())

    return {
        "run_id": layout.run_id,
        "source": source,
        "positive_label": options.positive_label,
        "feature_dim": dataset.feature_dim,
        "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
        "rows": {split.name: int(len(split.labels)) for split in (dataset.train, dataset.validation, dataset.test)},
        "positives": positives,
        "channels": {name: {"prefix": layout.channel_prefix(name), "shards": keys} for name, keys in shards.items()},
        "test": {"features": layout.test_features_key, "labels": layout.test_labels_key},
        "notes": list(dataset.notes),
    }
