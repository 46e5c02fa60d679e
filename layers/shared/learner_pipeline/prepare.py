"""Turn a loaded dataset into RecordIO shards, the stored test split and the run manifest."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from learner_pipeline.dataset import Dataset, Split, binary_labels, check_classes
from learner_pipeline.recordio import encode_dense_tensor, encoded_row_size
from learner_pipeline.runs import RunLayout

# Called with (key, body, content type) for every object prepare writes.
Sink = Callable[[str, bytes, str], None]

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
        sink(key, encode_dense_tensor(split.images[start:stop], labels[start:stop]), RECORDIO_CONTENT_TYPE)
        keys.append(key)
    return keys


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


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

    sink(layout.test_features_key, _npy_bytes(dataset.test.images), "application/octet-stream")
    sink(layout.test_labels_key, _npy_bytes(dataset.test.labels), "application/octet-stream")
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
