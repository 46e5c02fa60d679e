"""boto3 clients with the retry policy every function uses."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Adaptive mode retries throttling and 5xx errors with client-side rate limiting.
RETRY_CONFIG = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=70)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=RETRY_CONFIG)


@cache
def resource(service: str) -> Any:
    return boto3.resource(service, config=RETRY_CONFIG)
