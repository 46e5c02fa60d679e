"""Command line of the sandbox: ``python -m sandbox run FILE --results DIR``.

Exit status: 0 when the run SUCCEEDED, 1 when it FAILED (the reason is printed), 2 on a usage
error such as a missing file or an invalid template parameter.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any, TextIO

from learner_pipeline.runs import object_key_problem
from sandbox.intrinsics import TemplateError
from sandbox.runner import RunResult, run_dataset

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"
FUNCTION_LOG_NAME = "function-logs.jsonl"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Run the Linear Learner pipeline on one machine: moto plays AWS, a local engine plays SageMaker.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("up", help="serve the sandbox stack's AWS on a loopback port until Ctrl-C "
                                   "(see python -m sandbox up --help)")
    run = commands.add_parser("run", help="upload a dataset to the sandbox ingest bucket and run the chain to its end")
    run.add_argument("file", type=Path, help="dataset in the mnist.pkl.gz layout: a gzip'd pickle of (train, validation, test)")
    run.add_argument("--results", type=Path, required=True, help="directory that receives <run_id>/ with the run's result files")
    run.add_argument("--positive-label", type=int, help="digit labelled 1 (sets the template parameter PositiveLabel)")
    run.add_argument("--deliver-twice", action="store_true", help="deliver every event twice, as EventBridge may")
    run.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help="SAM template of the stack (default: %(default)s)")
    run.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter; repeat for several",
    )
    run.add_argument("--key", help="object key of the upload in the ingest bucket (default: the file name)")
    run.add_argument(
        "--show-function-logs",
        action="store_true",
        help=f"print the functions' logs instead of writing them to <run_id>/{FUNCTION_LOG_NAME}",
    )
    return parser


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None) -> int:
    """Run the command line; return the exit status."""
    out = stdout or sys.stdout
    arguments_list = sys.argv[1:] if argv is None else argv
    if arguments_list[:1] == ["up"]:
        # `up` has its own options and runs until stopped, so the server module parses them.
        from sandbox.server import main as serve

        return serve(arguments_list[1:], stdout=stdout, prog="python -m sandbox up")
    parser = build_parser()
    try:
        arguments = parser.parse_args(arguments_list)
    except SystemExit as exit_request:
        return int(exit_request.code or 0) and EXIT_USAGE
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return _run(arguments, out)


def _run(arguments: argparse.Namespace, out: TextIO) -> int:
    problem = _usage_problem(arguments)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        parameters = _parameters(arguments)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    results_root: Path = arguments.results
    results_root.mkdir(parents=True, exist_ok=True)
    # The run id is known only at the end, so logs go to a file of this process's own until then.
    function_log_path = results_root / f".{os.getpid()}-{FUNCTION_LOG_NAME}"

    def progress(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        with _function_log(arguments.show_function_logs, function_log_path, out) as function_output:
            result = run_dataset(
                arguments.file,
                results_root,
                template=arguments.template,
                parameters=parameters,
                deliver_twice=arguments.deliver_twice,
                ingest_key=arguments.key,
                progress=progress,
                function_output=function_output,
            )
    except TemplateError as exc:
        function_log_path.unlink(missing_ok=True)
        print(f"error: invalid template or parameters: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if result.results_dir is not None and function_log_path.exists():
        shutil.move(function_log_path, result.results_dir / FUNCTION_LOG_NAME)
    else:
        function_log_path.unlink(missing_ok=True)
    _print_result(result, out)
    return EXIT_SUCCEEDED if result.status == "SUCCEEDED" else EXIT_FAILED


def _usage_problem(arguments: argparse.Namespace) -> str | None:
    if arguments.file.is_dir():
        return f"dataset file {arguments.file} is a directory: pass the path of an mnist.pkl.gz-style file"
    if not arguments.file.is_file():
        return f"dataset file {arguments.file} not found: pass the path of an mnist.pkl.gz-style file"
    key = arguments.key or arguments.file.name
    if not key.endswith(".pkl.gz"):
        return (f"object key {key!r} does not end in .pkl.gz, so the ingest rule would not start a run: "
                "rename the file or pass --key NAME.pkl.gz")
    problem = object_key_problem(key)
    if problem is not None:
        return f"object {problem}: rename the file or pass another --key NAME.pkl.gz"
    if not arguments.template.is_file():
        return f"template {arguments.template} not found: pass --template PATH"
    if arguments.results.exists() and not arguments.results.is_dir():
        return f"--results {arguments.results} exists and is not a directory"
    try:
        arguments.results.mkdir(parents=True, exist_ok=True)
        probe = arguments.results / ".write-check"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        return f"--results {arguments.results} is not a writable directory ({exc.strerror}): pass another path"
    if arguments.positive_label is not None and arguments.positive_label < 0:
        return f"--positive-label must be 0 or greater, got {arguments.positive_label}"
    return None


def _parameters(arguments: argparse.Namespace) -> dict[str, str]:
    parameters = {}
    for assignment in arguments.parameter:
        name, separator, value = assignment.partition("=")
        if not separator or not name:
            raise ValueError(f"--parameter expects NAME=VALUE, got {assignment!r}")
        parameters[name] = value
    if arguments.positive_label is not None:
        parameters["PositiveLabel"] = str(arguments.positive_label)
    return parameters


class _function_log:
    """Destination of the functions' stdout: a log file, or the console with --show-function-logs."""

    def __init__(self, show: bool, path: Path, out: TextIO) -> None:
        self._show = show
        self._path = path
        self._out = out
        self._file: TextIO | None = None

    def __enter__(self) -> TextIO:
        if self._show:
            return self._out
        self._file = self._path.open("w", encoding="utf-8")
        return self._file

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()


def _print_result(result: RunResult, out: TextIO) -> None:
    print("", file=out)
    print(f"run {result.run_id or '-'}: {result.status} in {result.seconds:.1f}s", file=out)
    if result.status not in ("SUCCEEDED", "FAILED") and not result.error_code:
        print(f"reason: the run stopped progressing while {result.status}: no event moved it further; "
              f"see {FUNCTION_LOG_NAME} in the run's results folder", file=out)
    elif result.status != "SUCCEEDED":
        print(f"reason: {result.error_code or 'UNKNOWN'}: {result.error_message or 'no message recorded'}", file=out)

    if result.results_dir is not None:
        _print_confusion_matrix(result.results_dir, out)
        _print_metrics(result.results_dir, out)
        print(f"results: {result.results_dir}", file=out)

    summary = result.summary
    print(
        "sandbox: "
        f"tuning jobs created {summary['tuning_jobs_created']}, "
        f"training jobs created {summary['training_jobs_created']}, "
        f"models created {summary['models_created']}, "
        f"endpoint configs created {summary['endpoint_configs_created']}, "
        f"endpoints created {summary['endpoints_created']}, "
        f"endpoints alive at the end {len(summary['endpoints_alive_at_end'])}, "
        f"InvokeEndpoint calls {summary['invoke_endpoint_calls']} ({summary['invoke_endpoint_request_bytes']:,} bytes), "
        f"events delivered {summary['events_delivered']}",
        file=out,
    )
    if summary["dead_lettered"]:
        print(f"dead-lettered events: {summary['dead_lettered']}", file=out)
    for error in summary["errors"][-3:]:
        print(f"function error: {error['function']}: {error['error']}", file=out)


def _print_confusion_matrix(results_dir: Path, out: TextIO) -> None:
    path = results_dir / "confusion_matrix.csv"
    if path.is_file():
        print("confusion matrix:", file=out)
        print(path.read_text(encoding="utf-8").rstrip(), file=out)


def _print_metrics(results_dir: Path, out: TextIO) -> None:
    path = results_dir / "metrics.json"
    if not path.is_file():
        return
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    metrics: dict[str, Any] = document.get("metrics", {})
    scalars = {name: value for name, value in metrics.items() if isinstance(value, int | float)}
    if scalars:
        print("metrics: " + ", ".join(f"{name} {_format_number(value)}" for name, value in scalars.items()), file=out)
    for note in document.get("notes", []):
        print(f"note: {note}", file=out)


def _format_number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"
