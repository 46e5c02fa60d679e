"""The sandbox's default event bus: a queue of events waiting for delivery.

S3 events enter it from moto itself. While ``capture_s3_events`` is active, every object moto
creates in a bucket with EventBridge notifications enabled adds an "Object Created" event. This
covers PutObject, POST, CopyObject and CompleteMultipartUpload from any client or thread, so the
handler code stays unchanged. The SageMaker engine adds its state change events through ``put``.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.s3 import notifications as s3_notifications

from sandbox import events

# moto's S3 notification event names for each way of creating an object.
_CREATED_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "POST Object",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
}


class EventBus:
    """A thread-safe FIFO of EventBridge events, with the S3 hook that feeds it."""

    def __init__(self) -> None:
        self._queue: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()
        self._sequencer = itertools.count(1)
        self.published = 0

    def put(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._queue.append(event)
            self.published += 1

    def get(self) -> dict[str, Any] | None:
        """Return the oldest waiting event, or None when the bus is empty."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)

    @contextmanager
    def capture_s3_events(self) -> Iterator[None]:
        """Turn objects created in EventBridge-enabled moto buckets into events on this bus."""
        original_send_event = s3_notifications.send_event

        def send_event(account_id: str, event_name: Any, bucket: Any, key: Any) -> None:
            original_send_event(account_id, event_name, bucket, key)
            reason = _CREATED_REASONS.get(str(getattr(event_name, "value", event_name)))
            configuration = bucket.notification_configuration
            if reason is None or configuration is None or configuration.event_bridge is None:
                return
            # moto 5 completes a multipart upload through its put_object, which sends a Put
            # notification before the CompleteMultipartUpload one. S3 sends only the latter.
            if reason == "PutObject" and getattr(key, "multipart", None) is not None:
                return
            self.put(
                events.s3_object_created(
                    bucket=bucket.name,
                    key=key.name,
                    size=key.size,
                    etag=key.etag,
                    version_id=key.version_id if bucket.is_versioned else None,
                    sequencer=f"{next(self._sequencer):018X}",
                    reason=reason,
                    region=bucket.region_name,
                    account_id=account_id,
                )
            )

        with mock.patch.object(s3_notifications, "send_event", send_event):
            yield
