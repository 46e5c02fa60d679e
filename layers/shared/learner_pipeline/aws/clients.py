"""boto3 clients with the retry policy every function uses."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Adaptive mode retries throttling and 5xx errors with client-side rate limiting. total_max_attempts
# counts the first request, so a call makes at most 8 attempts.
RETRY_CONFIG = Config(retries={"total_max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=70)
# For callers that retry on their own, with backoff they log and count, such as InvokeEndpoint batches.
# Retries in botocore as well would multiply the attempts per call.
SINGLE_ATTEMPT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                               read_timeout=70)


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=RETRY_CONFIG)


@cache
def resource(service: str) -> Any:
    return boto3.resource(service, config=RETRY_CONFIG)


@cache
def single_attempt_client(service: str) -> Any:
    return boto3.client(service, config=SINGLE_ATTEMPT_CONFIG)
