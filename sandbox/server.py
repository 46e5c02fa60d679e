"""Serve the sandbox's AWS on a loopback port: ``python -m sandbox.server [--port P] [--host H]``.

The stack is created from the template in moto, as ``python -m sandbox run`` does, and moto's
server handles AWS requests from other processes (``llp --endpoint-url``, ``aws --endpoint-url``).
The server runs in this process, so it shares moto's backends with the sandbox: an object put
through the server reaches the event bus's S3 hook, and the local SageMaker engine's patches apply
to its SageMaker calls. The main thread delivers events and runs engine work until Ctrl-C.

``GET <url>/_sandbox/outputs`` returns the stack's Outputs as JSON (``stack_name``, ``region``,
``outputs``). The server only binds loopback addresses, because moto accepts any credentials.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The engine reads RecordIO with the shared layer's package. python -m sandbox.server does not
# run sandbox/__main__.py, which adds the layer directory to sys.path, so this module does too.
_SHARED_LAYER = Path(__file__).resolve().parent.parent / "layers" / "shared"
if str(_SHARED_LAYER) not in sys.path:
    sys.path.insert(0, str(_SHARED_LAYER))

import argparse  # noqa: E402 - after the sys.path setup above
import ipaddress  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from contextlib import ExitStack  # noqa: E402
from typing import Any, TextIO  # noqa: E402

from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app  # noqa: E402
from werkzeug.serving import BaseWSGIServer, make_server  # noqa: E402

from sandbox.intrinsics import TemplateError  # noqa: E402
from sandbox.runner import Sandbox, _StatusWatcher  # noqa: E402

logger = logging.getLogger(__name__)

OUTPUTS_PATH = "/_sandbox/outputs"
DEFAULT_PORT = 5005
DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
EXIT_STOPPED = 0
EXIT_USAGE = 2

StartResponse = Callable[..., Any]


class LoopbackMotoServer:
    """moto's WSGI application on a loopback address, plus the ``/_sandbox/outputs`` route.

    It does what moto's ``ThreadedMotoServer`` does (werkzeug's threaded server in a daemon
    thread, with moto's request handler) and wraps the application to add the route.
    """

    def __init__(self, host: str, port: int, outputs: dict[str, Any]) -> None:
        check_loopback(host)
        self._host = host
        self._port = port
        self._outputs_body = json.dumps(outputs, indent=2, sort_keys=True).encode("utf-8")
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        host_text = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{host_text}:{port}"

    def start(self) -> str:
        """Bind the address and serve in a daemon thread; return the endpoint URL."""
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self._host,
            self._port,
            self._application(moto_app),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _application(
        self, moto_app: Any
    ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
        def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == OUTPUTS_PATH and environ.get("REQUEST_METHOD") == "GET":
                start_response(
                    "200 OK",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(self._outputs_body))),
                    ],
                )
                return [self._outputs_body]
            return moto_app(environ, start_response)

        return application


def check_loopback(host: str) -> None:
    """Raise ValueError unless ``host`` is localhost or a loopback IP address."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"--host {host!r} is not an IP address or localhost: pass 127.0.0.1"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"--host {host} is not a loopback address: the sandbox serves 127.0.0.1 or ::1 only"
        )


def serve(
    sandbox: Sandbox,
    stop: threading.Event,
    *,
    poll_seconds: float = 0.2,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Deliver events and run engine work until ``stop`` is set; sleep ``poll_seconds`` when idle."""
    watcher = _StatusWatcher(sandbox, progress or (lambda line: None), time.monotonic())
    while not stop.is_set():
        steps = sandbox.run_until_idle(on_step=watcher.check)
        if steps:
            watcher.check()
        else:
            stop.wait(poll_seconds)


def build_parser(prog: str = "python -m sandbox.server") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Serve the sandbox stack's AWS on a loopback port and run every upload to its ingest bucket "
            f"through the chain. GET <url>{OUTPUTS_PATH} returns the stack's Outputs as JSON. Stop with Ctrl-C."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="TCP port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=DEFAULT_TEMPLATE,
        help="SAM template of the stack (default: %(default)s)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter; repeat for several",
    )
    parser.add_argument(
        "--outputs-file",
        type=Path,
        help="write {endpoint_url, stack_name, region, outputs} as JSON to this file once the server accepts requests",
    )
    parser.add_argument(
        "--function-log",
        type=Path,
        help="append the functions' logs to this file (default: print them to standard output)",
    )
    return parser


def main(
    argv: list[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stop: threading.Event | None = None,
    prog: str = "python -m sandbox.server",
) -> int:
    """Run the server until Ctrl-C, SIGTERM or ``stop`` is set, then return the exit status."""
    out = stdout or sys.stdout
    try:
        arguments = build_parser(prog).parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0) and EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The functions' loggers raise the root level to INFO, which would print every request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    try:
        check_loopback(arguments.host)
        parameters = _parameters(arguments.parameter)
        if not arguments.template.is_file():
            raise ValueError(f"template {arguments.template} not found: pass --template PATH")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    stop_event = stop or threading.Event()
    _stop_on_sigterm(stop_event)

    with ExitStack() as resources:
        function_output = out
        if arguments.function_log is not None:
            function_output = resources.enter_context(
                arguments.function_log.open("a", encoding="utf-8")
            )
        try:
            sandbox = resources.enter_context(
                Sandbox(arguments.template, parameters=parameters, function_output=function_output)
            )
        except TemplateError as exc:
            print(f"error: invalid template or parameters: {exc}", file=sys.stderr)
            return EXIT_USAGE

        description = {
            "stack_name": sandbox.stack.context.stack_name,
            "region": sandbox.stack.context.region,
            "outputs": sandbox.stack.outputs(),
        }
        server = LoopbackMotoServer(arguments.host, arguments.port, description)
        try:
            url = server.start()
        except OSError as exc:
            print(
                f"error: cannot listen on {arguments.host}:{arguments.port}: {exc}", file=sys.stderr
            )
            return EXIT_USAGE
        resources.callback(server.stop)

        _print_banner(url, description, out)
        if arguments.outputs_file is not None:
            arguments.outputs_file.write_text(
                json.dumps({"endpoint_url": url, **description}, indent=2) + "\n", encoding="utf-8"
            )

        try:
            serve(sandbox, stop_event, progress=lambda line: print(line, file=out, flush=True))
        except KeyboardInterrupt:
            pass
        print("sandbox server stopped", file=out, flush=True)
    return EXIT_STOPPED


def _parameters(assignments: list[str]) -> dict[str, str]:
    parameters = {}
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise ValueError(f"--parameter expects NAME=VALUE, got {assignment!r}")
        parameters[name] = value
    return parameters


def _stop_on_sigterm(stop: threading.Event) -> None:
    # signal.signal works only in the main thread. A server started in another thread (tests)
    # stops through the event instead.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())


def _print_banner(url: str, description: dict[str, Any], out: TextIO) -> None:
    outputs = description["outputs"]
    print(
        f"sandbox AWS endpoint: {url} (region {description['region']}, any credentials)", file=out
    )
    for name in ("IngestBucketName", "ResultsBucketName", "LedgerTableName"):
        if name in outputs:
            print(f"  {name}: {outputs[name]}", file=out)
    print(f"  stack outputs: {url}{OUTPUTS_PATH}", file=out)
    print(f"upload: llp --endpoint-url {url} upload mnist.pkl.gz", file=out)
    print("stop: Ctrl-C", file=out, flush=True)


if __name__ == "__main__":
    sys.exit(main())
