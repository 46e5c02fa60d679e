"""S3 reads and writes of the pipeline."""

from __future__ import annotations

import io
import json
from typing import Any, BinaryIO
from urllib.parse import unquote_plus

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from learner_pipeline.aws.clients import client

# Objects above 16 MiB go up as multipart uploads in 16 MiB parts.
TRANSFER_CONFIG = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024)


class BufferReader(io.RawIOBase):
    """A seekable file over a bytes-like object, without copying it as io.BytesIO does for a memoryview."""

    def __init__(self, buffer: bytes | memoryview) -> None:
        super().__init__()
        self._view = memoryview(buffer).cast("B")
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        count = max(0, min(len(target), len(self._view) - self._position))
        target[:count] = self._view[self._position:self._position + count]
        self._position += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._view)}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


class Storage:
    def __init__(self, s3: Any = None) -> None:
        self._s3 = s3 if s3 is not None else client("s3")

    def head(self, bucket: str, key: str, version_id: str | None = None) -> dict[str, Any]:
        arguments = {"Bucket": bucket, "Key": key}
        if version_id:
            arguments["VersionId"] = version_id
        return self._s3.head_object(**arguments)

    def resolve_event_key(self, bucket: str, key: str, version_id: str | None) -> tuple[str, dict[str, Any]]:
        """Find the object an event names, trying the key as sent and then URL-decoded.

        S3 URL-encodes keys in its notification formats ("red flower" becomes "red+flower"); this
        accepts both spellings so the pipeline works whichever form the event carries.
        """
        candidates = [key]
        decoded = unquote_plus(key)
        if decoded != key:
            candidates.append(decoded)
        last_error: ClientError | None = None
        for candidate in candidates:
            try:
                return candidate, self.head(bucket, candidate, version_id)
            except ClientError as exc:
                # Without s3:ListBucket, S3 returns 403 rather than 404 for a missing key.
                if exc.response.get("Error", {}).get("Code") not in ("403", "404", "NoSuchKey", "NotFound"):
                    raise
                last_error = exc
        assert last_error is not None
        raise last_error

    def open(self, bucket: str, key: str, version_id: str | None = None) -> BinaryIO:
        arguments = {"Bucket": bucket, "Key": key}
        if version_id:
            arguments["VersionId"] = version_id
        return self._s3.get_object(**arguments)["Body"]

    def read_bytes(self, bucket: str, key: str) -> bytes:
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def read_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.read_bytes(bucket, key))

    def write_bytes(self, bucket: str, key: str, body: bytes | memoryview,
                    content_type: str = "application/octet-stream") -> None:
        self._s3.upload_fileobj(BufferReader(body), bucket, key, ExtraArgs={"ContentType": content_type},
                                Config=TRANSFER_CONFIG)

    def write_json(self, bucket: str, key: str, document: Any) -> None:
        body = json.dumps(document, indent=2, sort_keys=True, default=str).encode("utf-8")
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")

    def write_text(self, bucket: str, key: str, text: str, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType=content_type)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True
