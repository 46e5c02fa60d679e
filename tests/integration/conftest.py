"""Handlers run in-process against moto, on resources created from template.yaml itself."""

import importlib.util
import os
import sys
import uuid
from contextlib import contextmanager
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


class HandlerRunner:
    """Runs a stack function's handler in-process with the environment the template gives it.

    Each function's app.py is imported once under a unique module name (they all share the name
    app), with its environment set, and removed from sys.modules at close().
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._modules: dict[str, object] = {}

    def __call__(self, logical_id: str, event: dict) -> dict:
        spec = self.stack.functions[logical_id]
        saved = {name: os.environ.get(name) for name in [*spec.environment, "AWS_LAMBDA_FUNCTION_NAME"]}
        os.environ.update({**spec.environment, "AWS_LAMBDA_FUNCTION_NAME": spec.name})
        try:
            module = self._modules.get(logical_id) or self._load(logical_id, spec.code_dir / "app.py")
            context = FakeContext(function_name=spec.name, memory_limit_in_mb=spec.memory_mb,
                                  aws_request_id=str(uuid.uuid4()))
            return module.lambda_handler(event, context)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def _load(self, logical_id: str, path: Path) -> object:
        module_name = f"handler_{logical_id}_{uuid.uuid4().hex}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module
        module_spec.loader.exec_module(module)
        self._modules[logical_id] = module
        return module

    def close(self) -> None:
        for module in self._modules.values():
            sys.modules.pop(module.__name__, None)
        self._modules.clear()


@contextmanager
def mocked_stack(parameters: dict):
    """Create the template's resources in a fresh moto mock, with clients cached inside it only."""
    with mock_aws():
        clients.client.cache_clear()
        clients.resource.cache_clear()
        clients.single_attempt_client.cache_clear()
        loaded = Stack.from_template(ROOT / "template.yaml", parameters=parameters)
        loaded.create_resources()
        try:
            yield loaded
        finally:
            clients.client.cache_clear()
            clients.resource.cache_clear()
            clients.single_attempt_client.cache_clear()


@pytest.fixture
def stack_parameters() -> dict:
    """Template parameter overrides; a test module redefines this fixture to change them."""
    return {}


@pytest.fixture
def stack(stack_parameters):
    with mocked_stack(stack_parameters) as loaded:
        yield loaded


@pytest.fixture
def invoke(stack):
    """Return a function that runs one stack function's handler on an event."""
    runner = HandlerRunner(stack)
    yield runner
    runner.close()
