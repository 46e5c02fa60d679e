"""The ``llp`` commands: upload, runs, status, watch and report, each against a ``Target``."""

from __future__ import annotations

import sys
import time
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from learner_pipeline.runs import RUN_ID_PATTERN, RunLayout, RunStatus, object_key_problem, run_id_for
from operator_cli import ledger
from operator_cli.formatting import (
    format_age,
    format_item,
    format_stage_line,
    parse_time,
    stages_entered,
)
from operator_cli.target import CliError, Target

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
# PutObject accepts at most 5 GiB in one request.
MAX_PUT_OBJECT_BYTES = 5 * 1024**3
INGEST_SUFFIX = ".pkl.gz"
REPORT_FILE = "report.html"


def upload(target: Target, path: Path, key: str | None, out: TextIO, err: TextIO) -> int:
    """Put ``path`` into the ingest bucket and print the run id the pipeline derives from it."""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "not found"
        raise CliError(f"file {path} {what}: pass the path of an mnist.pkl.gz-style dataset")
    size = path.stat().st_size
    if size > MAX_PUT_OBJECT_BYTES:
        raise CliError(
            f"file {path} has {size} bytes, more than the {MAX_PUT_OBJECT_BYTES} one PutObject accepts"
        )
    object_key = key or path.name
    if not object_key.endswith(INGEST_SUFFIX):
        raise CliError(
            f"key {object_key!r} does not end with {INGEST_SUFFIX}: the ingest rule starts runs only for such keys"
        )
    problem = object_key_problem(object_key)
    if problem is not None:
        raise CliError(f"{problem}: pass another --key NAME.pkl.gz")
    bucket = target.output("IngestBucketName")

    # One PutObject, not a multipart upload, so the ETag is the one S3 sends in the event.
    with path.open("rb") as body:
        response = target.client("s3").put_object(Bucket=bucket, Key=object_key, Body=body)
    run_id = run_id_for(bucket, object_key, response.get("VersionId"), response.get("ETag"))

    print(f"uploaded {path} to s3://{bucket}/{object_key} ({size} bytes)", file=err)
    print(f"follow the run with: llp {target.options} watch {run_id}", file=err)
    print(run_id, file=out)
    return EXIT_SUCCEEDED


def runs(target: Target, limit: int, out: TextIO, now: float | None = None) -> int:
    """Print the ``limit`` most recently created runs with their status and age."""
    if limit < 1:
        raise CliError(f"--limit must be 1 or more, got {limit}")
    table_name = target.output("LedgerTableName")
    items = ledger.scan_runs(target, table_name)
    if not items:
        print(f"no runs in ledger table {table_name}", file=out)
        return EXIT_SUCCEEDED

    items.sort(key=lambda item: str(item.get("created_at", "")), reverse=True)
    current = time.time() if now is None else now
    print(f"{'RUN':16}  {'STATUS':10}  {'AGE':>8}  {'SOURCE':40}  ERROR", file=out)
    for item in items[:limit]:
        created = parse_time(item.get("created_at"))
        age = format_age(current - created.timestamp()) if created else "-"
        source = item.get("source") or {}
        source_key = str(source.get("key", "-")) if isinstance(source, dict) else str(source)
        error = item.get("error_code") or ""
        print(
            f"{item['run_id']:16}  {item.get('status', '-'):10}  {age:>8}  {source_key:40}  {error}",
            file=out,
        )
    if len(items) > limit:
        print(f"({len(items) - limit} older runs not shown; pass --limit to see more)", file=out)
    return EXIT_SUCCEEDED


def status(target: Target, run_id: str, out: TextIO) -> int:
    """Print a run's stages with their times, its resource names, metrics and error."""
    check_run_id(run_id)
    item = require_run(target, run_id)
    print(format_item(item, results_bucket=target.outputs.get("ResultsBucketName")), file=out)
    return EXIT_SUCCEEDED


# An upload's run appears in the ledger within seconds; an id still unknown after this is a typo.
UNKNOWN_RUN_GRACE_SECONDS = 120.0


def watch(
    target: Target,
    run_id: str,
    interval: float,
    timeout: float,
    out: TextIO,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Print each stage the run enters until it ends: 0 when it SUCCEEDED, 1 when it FAILED."""
    check_run_id(run_id)
    if interval <= 0:
        raise CliError(f"--interval must be greater than 0 seconds, got {interval}")
    if timeout <= 0:
        raise CliError(f"--timeout must be greater than 0 seconds, got {timeout}")
    table_name = target.output("LedgerTableName")
    started = clock()
    reported: set[str] = set()
    waiting_reported = False

    while True:
        item = ledger.get_run(target, table_name, run_id)
        elapsed = clock() - started
        if item is None and not waiting_reported:
            print(
                f"{elapsed:7.1f}s  run {run_id} not in ledger table {table_name} yet; waiting",
                file=out,
                flush=True,
            )
            waiting_reported = True

        if item is not None:
            for stage in stages_entered(item):
                if stage not in reported:
                    reported.add(stage)
                    print(format_stage_line(elapsed, run_id, stage, item), file=out, flush=True)
            final = str(item.get("status"))
            if final in (RunStatus.SUCCEEDED, RunStatus.FAILED):
                print(
                    format_item(item, results_bucket=target.outputs.get("ResultsBucketName")),
                    file=out,
                    flush=True,
                )
                return EXIT_SUCCEEDED if final == RunStatus.SUCCEEDED else EXIT_FAILED

        if elapsed + interval > timeout or (item is None and elapsed + interval > UNKNOWN_RUN_GRACE_SECONDS):
            break
        sleep(interval)

    if item is None:
        raise CliError(
            f"run {run_id} not found in ledger table {table_name} after {min(timeout, UNKNOWN_RUN_GRACE_SECONDS):g}s: "
            "check the run id with llp runs, or the upload's key and bucket"
        )
    raise CliError(
        f"timed out after {timeout:g}s while run {run_id} is still {item.get('status')}: "
        "run watch again to keep following it"
    )


def report(target: Target, run_id: str, out_dir: Path, open_browser: bool, out: TextIO) -> int:
    """Download ``runs/<run_id>/`` from the results bucket to ``out_dir/<run_id>/`` and open report.html."""
    check_run_id(run_id)
    bucket = target.output("ResultsBucketName")
    prefix = RunLayout(run_id).root
    destination = out_dir / run_id

    s3 = target.client("s3")
    keys = [
        entry["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for entry in page.get("Contents", [])
    ]
    if not keys:
        item = require_run(target, run_id)
        raise CliError(
            f"run {run_id} has no results in s3://{bucket}/{prefix} yet (status {item.get('status')}): "
            "results appear when evaluation starts; try again later"
        )

    written = []
    for key in keys:
        relative = key[len(prefix) :]
        if not relative or ".." in Path(relative).parts:
            continue
        local = destination / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(local))
        written.append(local)
    print(f"downloaded {len(written)} files from s3://{bucket}/{prefix} to {destination}", file=out)

    report_path = destination / REPORT_FILE
    if not report_path.is_file():
        item = require_run(target, run_id)
        status = str(item.get("status"))
        if status == RunStatus.FAILED:
            raise CliError(
                f"run {run_id} FAILED with {item.get('error_code')}, so it has no {REPORT_FILE}: "
                f"{item.get('error_message')} (see {destination / 'status.json'})",
                exit_status=EXIT_FAILED,
            )
        raise CliError(f"run {run_id} is {status} and has no {REPORT_FILE} yet: it is written when evaluation "
                       "ends; follow the run with llp watch")
    print(f"report: {report_path}", file=out)
    if open_browser and not webbrowser.open(report_path.resolve().as_uri()):
        print(f"no web browser found: open {report_path} yourself", file=sys.stderr)
    return EXIT_SUCCEEDED


def check_run_id(run_id: str) -> None:
    if not RUN_ID_PATTERN.match(run_id):
        raise CliError(
            f"invalid run id {run_id!r}: a run id is 16 lowercase hex digits, as llp upload and llp runs print"
        )


def require_run(target: Target, run_id: str) -> dict[str, Any]:
    table_name = target.output("LedgerTableName")
    item = ledger.get_run(target, table_name, run_id)
    if item is None:
        raise CliError(
            f"run {run_id} not found in ledger table {table_name}: list recent runs with llp runs"
        )
    return item
