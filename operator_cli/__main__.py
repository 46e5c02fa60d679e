"""Command line of ``llp`` (``python -m operator_cli``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TextIO

from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from operator_cli import commands
from operator_cli.target import SANDBOX_OUTPUTS_PATH, CliError, connect, no_credentials_message

EXIT_INTERRUPTED = 130
# An estimate for the template's defaults: 6 training jobs on ml.c4.xlarge, 2 at a time, then
# endpoint creation and evaluation. Pass --timeout for larger tuning jobs.
DEFAULT_WATCH_TIMEOUT_SECONDS = 4 * 3600.0

DESCRIPTION = f"""\
Operate the Linear Learner Pipeline: upload a dataset, list runs, follow one, download its report.

Target: --stack NAME reads the deployed stack's Outputs with CloudFormation DescribeStacks, with
the usual AWS credentials, profile and region. --endpoint-url URL works on the sandbox server
(python -m sandbox up) and reads the Outputs from GET URL{SANDBOX_OUTPUTS_PATH}. The
environment variables LLP_STACK and LLP_ENDPOINT_URL set the default target.
"""

EPILOG = """\
exit status: 0 on success and when a watched run SUCCEEDED, 1 when a watched run FAILED,
2 on usage errors, a missing stack, run or credentials, AWS errors and watch timeouts.

example with the sandbox:
  python -m sandbox up --port 5005 &
  RUN=$(llp --endpoint-url http://127.0.0.1:5005 upload data/mnist.pkl.gz)
  llp --endpoint-url http://127.0.0.1:5005 watch "$RUN" --interval 1
  llp --endpoint-url http://127.0.0.1:5005 report "$RUN"
"""


def build_parser() -> argparse.ArgumentParser:
    # The target options are accepted before and after the command. SUPPRESS keeps a
    # command's parser from overwriting a value given before the command with its default.
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "--stack", default=argparse.SUPPRESS, help="name of the deployed CloudFormation stack"
    )
    target.add_argument(
        "--endpoint-url",
        default=argparse.SUPPRESS,
        help="URL of the sandbox server, e.g. http://127.0.0.1:5005",
    )
    target.add_argument(
        "--region",
        default=argparse.SUPPRESS,
        help="AWS region of the stack (default: the AWS configuration's)",
    )
    target.add_argument(
        "--profile",
        default=argparse.SUPPRESS,
        help="AWS profile for --stack (default: the AWS configuration's)",
    )

    parser = argparse.ArgumentParser(
        prog="llp",
        description=DESCRIPTION,
        epilog=EPILOG,
        parents=[target],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    upload = subcommands.add_parser(
        "upload", parents=[target], help="put a dataset into the ingest bucket and print its run id"
    )
    upload.add_argument("file", type=Path, help="dataset in the mnist.pkl.gz layout")
    upload.add_argument(
        "--key", help="object key in the ingest bucket, ending in .pkl.gz (default: the file name)"
    )

    runs = subcommands.add_parser(
        "runs", parents=[target], help="list recent runs with their status and age"
    )
    runs.add_argument(
        "--limit",
        type=int,
        default=20,
        help="number of runs to show, newest first (default: %(default)s)",
    )

    status = subcommands.add_parser(
        "status", parents=[target], help="show a run's stages, resources, metrics and error"
    )
    status.add_argument("run_id", metavar="RUN", help="run id (16 hex digits)")

    watch = subcommands.add_parser(
        "watch", parents=[target], help="print each stage a run enters until it ends"
    )
    watch.add_argument("run_id", metavar="RUN", help="run id (16 hex digits)")
    watch.add_argument(
        "--interval",
        type=float,
        default=10.0,
        help="seconds between ledger reads (default: %(default)s)",
    )
    watch.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WATCH_TIMEOUT_SECONDS,
        help="seconds to wait for the run to end (default: %(default)s)",
    )

    report = subcommands.add_parser(
        "report", parents=[target], help="download a run's results and open report.html"
    )
    report.add_argument("run_id", metavar="RUN", help="run id (16 hex digits)")
    report.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="directory that receives RUN/ (default: %(default)s)",
    )
    report.add_argument(
        "--no-open", action="store_true", help="do not open report.html in a web browser"
    )
    return parser


def main(
    argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the command line; return the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        arguments = build_parser().parse_args(argv)
    except SystemExit as exit_request:
        return int(exit_request.code or 0) and commands.EXIT_USAGE

    try:
        return _run(arguments, out, err)
    except BrokenPipeError:
        # The reader (head, less) closed the pipe: stop quietly, as other command-line tools do.
        sys.stdout = None
        return commands.EXIT_SUCCEEDED
    except CliError as exc:
        print(f"error: {exc.message}", file=err)
        return exc.exit_status
    except NoCredentialsError:
        print(f"error: {no_credentials_message()}", file=err)
        return commands.EXIT_USAGE
    except EndpointConnectionError as exc:
        print(
            f"error: cannot reach {exc.kwargs.get('endpoint_url')}: check the network, --region or --endpoint-url",
            file=err,
        )
        return commands.EXIT_USAGE
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(
            f"error: AWS {exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}",
            file=err,
        )
        return commands.EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=err)
        return EXIT_INTERRUPTED


def _run(arguments: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    stack = getattr(arguments, "stack", None)
    endpoint_url = getattr(arguments, "endpoint_url", None)
    # A target on the command line replaces the one in the environment.
    if stack is None and endpoint_url is None:
        stack = os.environ.get("LLP_STACK") or None
        endpoint_url = os.environ.get("LLP_ENDPOINT_URL") or None
    target = connect(
        stack=stack,
        endpoint_url=endpoint_url,
        region=getattr(arguments, "region", None),
        profile=getattr(arguments, "profile", None),
    )
    match arguments.command:
        case "upload":
            return commands.upload(target, arguments.file, arguments.key, out, err)
        case "runs":
            return commands.runs(target, arguments.limit, out)
        case "status":
            return commands.status(target, arguments.run_id, out)
        case "watch":
            return commands.watch(
                target, arguments.run_id, arguments.interval, arguments.timeout, out
            )
        case "report":
            return commands.report(
                target, arguments.run_id, arguments.out, not arguments.no_open, out
            )
    raise CliError(f"unknown command {arguments.command!r}")


if __name__ == "__main__":
    sys.exit(main())
