"""Fixtures shared by every test folder: fake AWS credentials and sample events."""

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"

# No test may reach real AWS: fake credentials are set before any client exists.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "LinearLearnerPipeline",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
})


def load_event(name: str) -> dict:
    """Load a sample event from events/, the same file `sam local invoke -e` uses."""
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def event():
    return load_event
