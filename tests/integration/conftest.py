"""Handlers run in-process against moto, on resources created from template.yaml itself."""

import importlib.util
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from moto import mock_aws

from learner_pipeline.aws import clients
from sandbox.stack import Stack

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class FakeContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = ""
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test"
    remaining_millis: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@pytest.fixture
def stack(monkeypatch):
    with mock_aws():
        clients.client.cache_clear()
        clients.resource.cache_clear()
        loaded = Stack.from_template(ROOT / "template.yaml")
        loaded.create_resources()
        yield loaded
    clients.client.cache_clear()
    clients.resource.cache_clear()


@pytest.fixture
def invoke(stack, monkeypatch):
    """Return a function that runs one stack function's handler on an event, with its template environment."""
    loaded_modules = []

    def run(logical_id: str, event: dict) -> dict:
        spec = stack.functions[logical_id]
        for name, value in spec.environment.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", spec.name)
        module_name = f"handler_{logical_id}_{uuid.uuid4().hex}"
        module_spec = importlib.util.spec_from_file_location(module_name, spec.code_dir / "app.py")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        loaded_modules.append(module_name)
        module_spec.loader.exec_module(module)
        context = FakeContext(function_name=spec.name, memory_limit_in_mb=spec.memory_mb,
                              aws_request_id=str(uuid.uuid4()))
        return module.lambda_handler(event, context)

    yield run
    for name in loaded_modules:
        sys.modules.pop(name, None)
