"""Helpers shared by the integration tests: sample data and event shapes."""

import gzip
import io
import pickle

import boto3
import numpy as np

from sandbox.stack import Stack


def physical(stack: Stack, logical_id: str) -> str:
    return stack.physical(logical_id).name


def digits_dataset(rows: tuple[int, int, int] = (300, 100, 100), seed: int = 7) -> bytes:
    """A small gzip'd pickle in the tutorial layout: separable blobs standing in for 10 digit classes."""
    generator = np.random.default_rng(seed)
    centers = generator.random((10, 784), dtype=np.float32)
    splits = []
    for count in rows:
        labels = np.arange(count, dtype=np.int64) % 10
        images = np.clip(centers[labels] + generator.normal(0, 0.05, (count, 784)), 0, 1).astype(np.float32)
        splits.append((images, labels))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as compressed:
        pickle.dump(tuple(splits), compressed, protocol=4)
    return buffer.getvalue()


def upload(stack: Stack, key: str, body: bytes) -> dict:
    """Put an object into the ingest bucket and return the S3 "Object Created" event AWS would send."""
    bucket = physical(stack, "IngestBucket")
    s3 = boto3.client("s3")
    response = s3.put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "key": key, "version_id": response.get("VersionId"),
            "etag": response["ETag"].strip('"'), "size": len(body)}


def s3_event(template: dict, bucket: str, key: str, size: int, etag: str, version_id: str | None) -> dict:
    event = {**template, "detail": {**template["detail"]}}
    event["resources"] = [f"arn:aws:s3:::{bucket}"]
    event["detail"]["bucket"] = {"name": bucket}
    obj = {"key": key, "size": size, "etag": etag, "sequencer": "00617F08299329D189"}
    if version_id:
        obj["version-id"] = version_id
    event["detail"]["object"] = obj
    return event
