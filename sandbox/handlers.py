"""Load Lambda handlers in-process, each as if it ran in its own Lambda execution environment.

Every function is ``functions/<name>/app.py``, so the handlers share a module name. The loader
imports each one under a unique module name, with the function's environment variables set and
its code and layer directories on ``sys.path``. Modules imported from the code directory are
private to the function, and so are those from the layer directories with ``isolate_layers``.
Private modules are in ``sys.modules`` only while the function imports or runs. Two functions
therefore never share module-level state such as cached boto3 clients or settings read at
import time.

Not thread-safe: the environment, ``sys.path`` and ``sys.modules`` are process-wide.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from sandbox.stack import FunctionSpec

Handler = Callable[..., Any]

_module_counter = itertools.count(1)


@dataclass
class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    identity: Any = None
    client_context: Any = None
    _started_at: float = field(default_factory=time.monotonic, repr=False)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        day = time.strftime("%Y/%m/%d", time.gmtime())
        return f"{day}/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started_at
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


class _StreamRouter(io.TextIOBase):
    """A stdout stand-in whose destination can change after loggers captured a reference to it.

    Loggers created while a handler module is imported keep the stream that was ``sys.stdout``
    at that time, so routing through one object lets each invocation choose where logs go.
    """

    def __init__(self) -> None:
        self.target: TextIO = sys.__stdout__ if sys.__stdout__ is not None else io.StringIO()

    def write(self, text: str) -> int:
        self.target.write(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def writable(self) -> bool:
        return True


_STDOUT_ROUTER = _StreamRouter()


class LoadedFunction:
    """A handler imported in its own module namespace; call it like the handler itself."""

    def __init__(
        self,
        code_dir: Path,
        *,
        handler: str = "app.lambda_handler",
        environment: Mapping[str, str] | None = None,
        layer_dirs: Sequence[Path] = (),
        function_name: str | None = None,
        function_arn: str | None = None,
        timeout_seconds: int = 3,
        memory_mb: int = 128,
        region: str | None = None,
        isolate_layers: bool = False,
        output: TextIO | None = None,
    ) -> None:
        self.code_dir = Path(code_dir).resolve()
        self.layer_dirs = tuple(Path(directory).resolve() for directory in layer_dirs)
        self.function_name = function_name or self.code_dir.name
        self.region = region or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.function_arn = function_arn or f"arn:aws:lambda:{self.region}:123456789012:function:{self.function_name}"
        self.timeout_seconds = timeout_seconds
        self.memory_mb = memory_mb
        self.output = output
        self.environment = {**self._runtime_environment(handler), **dict(environment or {})}

        self._private_roots = (self.code_dir, *self.layer_dirs) if isolate_layers else (self.code_dir,)
        self._private_modules: dict[str, ModuleType] = {}

        module_path, _, self._handler_name = handler.rpartition(".")
        source = self.code_dir / (module_path.replace(".", "/") + ".py")
        if not source.is_file():
            raise FileNotFoundError(f"handler module {source} not found: check CodeUri and Handler ({handler})")
        self.module = self._import(source)
        self.handler: Handler = getattr(self.module, self._handler_name)

    def __call__(self, event: Any, context: LambdaContext | None = None) -> Any:
        """Invoke the handler with ``event``, and a fresh context unless one is given."""
        context = context or self.new_context()
        with self._function_scope():
            return self.handler(event, context)

    def new_context(self, request_id: str | None = None) -> LambdaContext:
        return LambdaContext(
            function_name=self.function_name,
            memory_limit_in_mb=self.memory_mb,
            invoked_function_arn=self.function_arn,
            timeout_seconds=self.timeout_seconds,
            aws_request_id=request_id or str(uuid.uuid4()),
        )

    def _runtime_environment(self, handler: str) -> dict[str, str]:
        """Return the variables the Lambda runtime sets for every function."""
        return {
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": handler,
            # X-Ray is not emulated: with AWS_LAMBDA_FUNCTION_NAME set, Powertools would
            # otherwise enable its tracer and look for a trace segment.
            "POWERTOOLS_TRACE_DISABLED": "true",
        }

    def _import(self, source: Path) -> ModuleType:
        module_name = f"sandbox_function_{self.code_dir.name}_{next(_module_counter)}"
        spec = importlib.util.spec_from_file_location(module_name, source)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import handler module {source}")
        module = importlib.util.module_from_spec(spec)

        with self._function_scope():
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            finally:
                sys.modules.pop(module_name, None)
        return module

    @contextmanager
    def _function_scope(self) -> Iterator[None]:
        """Set the function's environment, sys.path, private modules and stdout for a while."""
        saved_environment = dict(os.environ)
        saved_path = list(sys.path)
        displaced = self._swap_in_private_modules()
        modules_before = set(sys.modules)
        previous_target = _STDOUT_ROUTER.target
        current_stdout = previous_target if sys.stdout is _STDOUT_ROUTER else sys.stdout
        _STDOUT_ROUTER.target = self.output or current_stdout

        os.environ.update(self.environment)
        sys.path[:0] = [str(self.code_dir), *(str(directory) for directory in self.layer_dirs)]
        try:
            with redirect_stdout(_STDOUT_ROUTER):
                yield
        finally:
            os.environ.clear()
            os.environ.update(saved_environment)
            sys.path[:] = saved_path
            _STDOUT_ROUTER.target = previous_target
            self._swap_out_private_modules(modules_before, displaced)

    def _swap_in_private_modules(self) -> dict[str, ModuleType]:
        displaced = {}
        for name, module in list(sys.modules.items()):
            if name not in self._private_modules and self._is_private(module):
                displaced[name] = sys.modules.pop(name)
        for name, module in self._private_modules.items():
            if name in sys.modules:
                displaced[name] = sys.modules[name]
            sys.modules[name] = module
        return displaced

    def _swap_out_private_modules(self, modules_before: set[str], displaced: dict[str, ModuleType]) -> None:
        for name in set(sys.modules) - modules_before:
            if self._is_private(sys.modules[name]):
                self._private_modules[name] = sys.modules[name]
        for name in self._private_modules:
            sys.modules.pop(name, None)
        sys.modules.update(displaced)

    def _is_private(self, module: ModuleType | None) -> bool:
        location = getattr(module, "__file__", None)
        if not location:
            return False
        path = Path(location)
        return any(path.is_relative_to(root) for root in self._private_roots)


def load_handler(code_dir: str | Path, **options: Any) -> LoadedFunction:
    """Import ``<code_dir>/app.py`` in isolation and return it as a callable handler.

    Options are those of ``LoadedFunction``: handler, environment, layer_dirs, function_name,
    function_arn, timeout_seconds, memory_mb, region, isolate_layers and output.
    """
    return LoadedFunction(Path(code_dir), **options)


def load_function(spec: FunctionSpec, *, region: str, isolate_layers: bool = True, output: TextIO | None = None) -> LoadedFunction:
    """Load a stack function with the environment, layers and limits the template gives it."""
    return LoadedFunction(
        spec.code_dir,
        handler=spec.handler,
        environment=spec.environment,
        layer_dirs=spec.layer_dirs,
        function_name=spec.name,
        function_arn=spec.arn,
        timeout_seconds=spec.timeout_seconds,
        memory_mb=spec.memory_mb,
        region=region,
        isolate_layers=isolate_layers,
        output=output,
    )


class StackFunctions(Mapping[str, LoadedFunction]):
    """The stack's functions by logical id, each loaded on first access.

    A pytest fixture can return ``StackFunctions(stack)`` inside ``mock_aws()`` and tests call
    ``functions["PrepareFunction"](event)``. Layers are shared with the test process by
    default, so ``pytest.raises`` matches the exception classes the handlers raise.
    """

    def __init__(self, stack: Any, *, isolate_layers: bool = False, output: TextIO | None = None) -> None:
        self._stack = stack
        self._isolate_layers = isolate_layers
        self._output = output
        self._loaded: dict[str, LoadedFunction] = {}

    def __getitem__(self, logical_id: str) -> LoadedFunction:
        if logical_id not in self._loaded:
            spec = self._stack.functions[logical_id]
            self._loaded[logical_id] = load_function(
                spec, region=self._stack.context.region, isolate_layers=self._isolate_layers, output=self._output
            )
        return self._loaded[logical_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stack.functions)

    def __len__(self) -> int:
        return len(self._stack.functions)
