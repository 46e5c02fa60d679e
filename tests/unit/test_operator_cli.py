"""llp against a stack in moto: CloudFormation Outputs, the ingest bucket, the ledger, the results."""

import io
import json
import socket
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from learner_pipeline.aws.ledger import Ledger
from learner_pipeline.errors import TuningFailedError
from learner_pipeline.runs import RunStatus, run_id_for
from operator_cli import commands
from operator_cli.__main__ import main
from operator_cli.target import CliError, connect

STACK = "llp-test"
REGION = "us-east-1"
RUN_A = "0123456789abcdef"
RUN_B = "fedcba9876543210"

# Only the resources llp reads, with the project template's output names.
TEMPLATE = {
    "Resources": {
        "IngestBucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": "llp-ingest"},
        },
        "ResultsBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "llp-results"}},
        "LedgerTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "llp-ledger",
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "run_id", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "run_id", "KeyType": "HASH"}],
            },
        },
    },
    "Outputs": {
        "IngestBucketName": {"Value": {"Ref": "IngestBucket"}},
        "ResultsBucketName": {"Value": {"Ref": "ResultsBucket"}},
        "LedgerTableName": {"Value": {"Ref": "LedgerTable"}},
    },
}


@dataclass
class CliRun:
    exit_status: int
    out: str
    err: str


def llp(*arguments: str | Path) -> CliRun:
    out, err = io.StringIO(), io.StringIO()
    status = main([str(argument) for argument in arguments], stdout=out, stderr=err)
    return CliRun(status, out.getvalue(), err.getvalue())


def on_stack(*arguments: str | Path) -> CliRun:
    return llp("--stack", STACK, "--region", REGION, *arguments)


@pytest.fixture
def stack(monkeypatch):
    monkeypatch.delenv("LLP_STACK", raising=False)
    monkeypatch.delenv("LLP_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName=STACK, TemplateBody=json.dumps(TEMPLATE)
        )
        # moto's CloudFormation leaves VersioningConfiguration unapplied (moto 5.2.5).
        boto3.client("s3", region_name=REGION).put_bucket_versioning(
            Bucket="llp-ingest", VersioningConfiguration={"Status": "Enabled"}
        )
        yield


@pytest.fixture
def ledger(stack):
    table = boto3.resource("dynamodb", region_name=REGION).Table("llp-ledger")
    return Ledger("llp-ledger", table=table)


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(b"not parsed by llp" * 100)
    return path


def succeed(ledger, run_id):
    ledger.start(
        run_id,
        {"source": {"bucket": "llp-ingest", "key": "uploads/mnist.pkl.gz", "version_id": "v1"}},
    )
    ledger.advance(run_id, RunStatus.TUNING, {"tuning_job_name": f"llp-{run_id}"})
    ledger.advance(
        run_id,
        RunStatus.DEPLOYING,
        {"best_training_job": f"llp-{run_id}-001", "endpoint_name": f"llp-{run_id}"},
    )
    ledger.advance(run_id, RunStatus.EVALUATING)
    ledger.advance(run_id, RunStatus.SUCCEEDED, {"metrics": {"accuracy": 0.987, "f1": 0.9353}})


def fail_in_tuning(ledger, run_id):
    ledger.start(run_id, {"source": {"bucket": "llp-ingest", "key": "bad.pkl.gz"}})
    ledger.advance(run_id, RunStatus.TUNING, {"tuning_job_name": f"llp-{run_id}"})
    ledger.fail(
        run_id, TuningFailedError("every training job failed", code="NO_TRAINING_JOB_SUCCEEDED")
    )


# ---- target selection ------------------------------------------------------------------------


def test_target_reads_stack_outputs(stack):
    target = connect(stack=STACK, endpoint_url=None, region=REGION)

    assert target.outputs["IngestBucketName"] == "llp-ingest"
    assert target.outputs["LedgerTableName"] == "llp-ledger"


def test_missing_stack_is_clear(stack):
    run = llp("--stack", "no-such-stack", "--region", REGION, "runs")

    assert run.exit_status == 2
    assert "stack no-such-stack not found in region us-east-1" in run.err


def test_no_target_is_usage_error(monkeypatch):
    monkeypatch.delenv("LLP_STACK", raising=False)
    monkeypatch.delenv("LLP_ENDPOINT_URL", raising=False)

    run = llp("runs")

    assert run.exit_status == 2
    assert "pass --stack NAME" in run.err


def test_both_targets_rejected():
    run = llp("--stack", STACK, "--endpoint-url", "http://127.0.0.1:5005", "runs")

    assert run.exit_status == 2
    assert "not both" in run.err


def test_no_credentials_is_clear(monkeypatch, tmp_path):
    # Given no credentials anywhere boto3 looks, and no instance metadata lookup
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECURITY_TOKEN",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)

    run = on_stack("runs")

    assert run.exit_status == 2
    assert "no AWS credentials found" in run.err


def test_endpoint_must_be_loopback():
    run = llp("--endpoint-url", "http://10.1.2.3:5005", "runs")

    assert run.exit_status == 2
    assert "not a loopback address" in run.err


def test_unreachable_sandbox_is_clear():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The port is closed once the probe socket is.

    run = llp("--endpoint-url", f"http://127.0.0.1:{port}", "runs")

    assert run.exit_status == 2
    assert "cannot reach the sandbox server" in run.err


def test_target_options_after_command(stack):
    run = llp("runs", "--stack", STACK, "--region", REGION)

    assert run.exit_status == 0, run.err


def test_environment_selects_stack(stack, monkeypatch):
    monkeypatch.setenv("LLP_STACK", STACK)

    run = llp("--region", REGION, "runs")

    assert run.exit_status == 0, run.err


# ---- upload ----------------------------------------------------------------------------------


def test_upload_prints_run_id(stack, dataset):
    run = on_stack("upload", dataset, "--key", "uploads/mnist.pkl.gz")

    head = boto3.client("s3", region_name=REGION).head_object(
        Bucket="llp-ingest", Key="uploads/mnist.pkl.gz"
    )
    expected = run_id_for("llp-ingest", "uploads/mnist.pkl.gz", head["VersionId"], head["ETag"])
    assert run.exit_status == 0, run.err
    assert run.out.strip() == expected
    assert f"watch {expected}" in run.err


def test_upload_defaults_key_to_name(stack, dataset):
    on_stack("upload", dataset)

    listing = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket="llp-ingest")
    assert [entry["Key"] for entry in listing["Contents"]] == ["mnist.pkl.gz"]


def test_upload_versions_differ(stack, dataset):
    # Given the same bytes uploaded twice to a versioned bucket
    first = on_stack("upload", dataset).out.strip()
    second = on_stack("upload", dataset).out.strip()

    # Then each upload is its own run, as each has its own version id
    assert first != second


def test_upload_missing_file(stack, tmp_path):
    run = on_stack("upload", tmp_path / "absent.pkl.gz")

    assert run.exit_status == 2
    assert "not found" in run.err


def test_upload_rejects_other_suffix(stack, dataset):
    run = on_stack("upload", dataset, "--key", "uploads/mnist.zip")

    assert run.exit_status == 2
    assert "does not end with .pkl.gz" in run.err


def test_upload_rejects_long_key(stack, dataset):
    # Given a key of 1,025 bytes, one more than S3 accepts
    run = on_stack("upload", dataset, "--key", "é" * 509 + ".pkl.gz")

    assert run.exit_status == 2
    assert "1025 bytes" in run.err


def test_upload_rejects_non_utf8_key(stack, dataset):
    # Given a key as Python decodes a Latin-1 file name: with a surrogate escape
    run = on_stack("upload", dataset, "--key", "caf\udce9.pkl.gz")

    assert run.exit_status == 2
    assert "not valid UTF-8" in run.err


# ---- runs ------------------------------------------------------------------------------------


def test_runs_empty_ledger(stack):
    run = on_stack("runs")

    assert run.exit_status == 0
    assert "no runs in ledger table llp-ledger" in run.out


def test_runs_newest_first(ledger):
    succeed(ledger, RUN_A)
    fail_in_tuning(ledger, RUN_B)

    run = on_stack("runs")

    lines = run.out.splitlines()
    assert run.exit_status == 0, run.err
    assert lines[1].startswith(RUN_B)
    assert lines[2].startswith(RUN_A)
    assert "NO_TRAINING_JOB_SUCCEEDED" in lines[1]


def test_runs_limit(ledger):
    succeed(ledger, RUN_A)
    succeed(ledger, RUN_B)

    run = on_stack("runs", "--limit", "1")

    assert RUN_B in run.out
    assert RUN_A not in run.out
    assert "1 older runs not shown" in run.out


def test_runs_rejects_zero_limit(stack):
    run = on_stack("runs", "--limit", "0")

    assert run.exit_status == 2
    assert "--limit must be 1 or more" in run.err


# ---- status ----------------------------------------------------------------------------------


def test_status_lists_stages(ledger):
    succeed(ledger, RUN_A)

    run = on_stack("status", RUN_A)

    assert run.exit_status == 0, run.err
    for stage in ("PREPARING", "TUNING", "DEPLOYING", "EVALUATING", "SUCCEEDED"):
        assert f"  {stage}" in run.out
    assert f"tuning job: llp-{RUN_A}" in run.out
    assert f"endpoint: llp-{RUN_A}" in run.out
    assert "metrics: accuracy 0.9870, f1 0.9353" in run.out
    assert f"results: s3://llp-results/runs/{RUN_A}/" in run.out


def test_status_shows_error(ledger):
    fail_in_tuning(ledger, RUN_B)

    run = on_stack("status", RUN_B)

    assert f"run {RUN_B}: FAILED" in run.out
    assert "error: NO_TRAINING_JOB_SUCCEEDED: every training job failed" in run.out
    assert "DEPLOYING" not in run.out


def test_status_unknown_run(stack):
    run = on_stack("status", RUN_A)

    assert run.exit_status == 2
    assert f"run {RUN_A} not found in ledger table llp-ledger" in run.err


def test_status_invalid_run_id(stack):
    run = on_stack("status", "mnist.pkl.gz")

    assert run.exit_status == 2
    assert "invalid run id 'mnist.pkl.gz'" in run.err


# ---- watch -----------------------------------------------------------------------------------


class Clock:
    """A fake clock for watch: each sleep advances time and may change the ledger."""

    def __init__(self, on_sleep=None):
        self.now = 0.0
        self.sleeps = 0
        self._on_sleep = on_sleep

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        self.sleeps += 1
        if self._on_sleep:
            self._on_sleep(self.sleeps)


def watch_target():
    return connect(stack=STACK, endpoint_url=None, region=REGION)


def test_watch_follows_to_success(ledger):
    # Given a run that moves one stage per poll
    ledger.start(RUN_A, {"source": {"bucket": "llp-ingest", "key": "mnist.pkl.gz"}})
    steps = {
        1: lambda: ledger.advance(RUN_A, RunStatus.TUNING, {"tuning_job_name": f"llp-{RUN_A}"}),
        2: lambda: ledger.advance(RUN_A, RunStatus.DEPLOYING, {"endpoint_name": f"llp-{RUN_A}"}),
        3: lambda: ledger.advance(RUN_A, RunStatus.EVALUATING),
        4: lambda: ledger.advance(RUN_A, RunStatus.SUCCEEDED),
    }
    clock = Clock(lambda count: steps[count]())
    out = io.StringIO()

    # When
    status = commands.watch(watch_target(), RUN_A, 5, 60, out, sleep=clock.sleep, clock=clock)

    # Then
    lines = out.getvalue().splitlines()
    assert status == 0
    assert [line.split()[3] for line in lines[:5]] == [
        "PREPARING",
        "TUNING",
        "DEPLOYING",
        "EVALUATING",
        "SUCCEEDED",
    ]
    assert clock.sleeps == 4


def test_watch_reports_skipped_stages(ledger):
    # Given a run that passes through EVALUATING between two polls
    ledger.start(RUN_A, {})
    ledger.advance(RUN_A, RunStatus.TUNING)
    ledger.advance(RUN_A, RunStatus.DEPLOYING)

    def finish(count):
        ledger.advance(RUN_A, RunStatus.EVALUATING)
        ledger.advance(RUN_A, RunStatus.SUCCEEDED)

    clock = Clock(finish)
    out = io.StringIO()

    commands.watch(watch_target(), RUN_A, 5, 60, out, sleep=clock.sleep, clock=clock)

    assert f"run {RUN_A} EVALUATING" in out.getvalue()


def test_watch_failed_exits_one(ledger):
    fail_in_tuning(ledger, RUN_B)

    run = on_stack("watch", RUN_B, "--interval", "0.01", "--timeout", "5")

    assert run.exit_status == 1
    assert "NO_TRAINING_JOB_SUCCEEDED" in run.out


def test_watch_succeeded_exits_zero(ledger):
    succeed(ledger, RUN_A)

    run = on_stack("watch", RUN_A, "--interval", "0.01", "--timeout", "5")

    assert run.exit_status == 0, run.err
    assert f"run {RUN_A}: SUCCEEDED" in run.out


def test_watch_timeout_exits_two(ledger):
    ledger.start(RUN_A, {})
    clock = Clock()

    with pytest.raises(
        commands.CliError, match="timed out after 30s while run 0123456789abcdef is still PREPARING"
    ):
        commands.watch(watch_target(), RUN_A, 10, 30, io.StringIO(), sleep=clock.sleep, clock=clock)
    assert clock.now <= 30


def test_watch_timeout_exit_status(ledger):
    ledger.start(RUN_A, {})

    run = on_stack("watch", RUN_A, "--interval", "0.01", "--timeout", "0.05")

    assert run.exit_status == 2
    assert "timed out" in run.err


def test_watch_waits_for_new_run(ledger):
    # Given a run the prepare function records only after the first poll
    clock = Clock(lambda count: count == 1 and succeed(ledger, RUN_A))
    out = io.StringIO()

    status = commands.watch(watch_target(), RUN_A, 1, 60, out, sleep=clock.sleep, clock=clock)

    assert status == 0
    assert "not in ledger table llp-ledger yet; waiting" in out.getvalue()


def test_watch_unknown_run(stack):
    run = on_stack("watch", RUN_A, "--interval", "0.01", "--timeout", "0.05")

    assert run.exit_status == 2
    assert f"run {RUN_A} not found in ledger table llp-ledger after 0.05s" in run.err


def test_watch_rejects_zero_interval(stack):
    run = on_stack("watch", RUN_A, "--interval", "0")

    assert run.exit_status == 2
    assert "--interval must be greater than 0" in run.err


# ---- report ----------------------------------------------------------------------------------


def put_results(run_id):
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(
        Bucket="llp-results", Key=f"runs/{run_id}/report.html", Body=b"<html>report</html>"
    )
    s3.put_object(Bucket="llp-results", Key=f"runs/{run_id}/metrics.json", Body=b"{}")
    s3.put_object(
        Bucket="llp-results", Key=f"runs/{RUN_B}/report.html", Body=b"<html>other run</html>"
    )


def test_report_downloads_run(ledger, tmp_path):
    succeed(ledger, RUN_A)
    put_results(RUN_A)

    run = on_stack("report", RUN_A, "--out", tmp_path, "--no-open")

    assert run.exit_status == 0, run.err
    assert (tmp_path / RUN_A / "report.html").read_text() == "<html>report</html>"
    assert (tmp_path / RUN_A / "metrics.json").is_file()
    assert not (tmp_path / RUN_B).exists()


def test_report_opens_browser(ledger, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(commands.webbrowser, "open", lambda url: opened.append(url) or True)
    succeed(ledger, RUN_A)
    put_results(RUN_A)

    on_stack("report", RUN_A, "--out", tmp_path)

    assert opened == [(tmp_path / RUN_A / "report.html").resolve().as_uri()]


def test_report_no_open_skips_browser(ledger, tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr(commands.webbrowser, "open", lambda url: opened.append(url) or True)
    succeed(ledger, RUN_A)
    put_results(RUN_A)

    on_stack("report", RUN_A, "--out", tmp_path, "--no-open")

    assert opened == []


def test_report_before_results(ledger, tmp_path):
    ledger.start(RUN_A, {})

    run = on_stack("report", RUN_A, "--out", tmp_path, "--no-open")

    assert run.exit_status == 2
    assert "has no results" in run.err
    assert "status PREPARING" in run.err


def test_report_unknown_run(stack, tmp_path):
    run = on_stack("report", RUN_A, "--out", tmp_path, "--no-open")

    assert run.exit_status == 2
    assert f"run {RUN_A} not found" in run.err


def test_report_of_failed_run_exits_one(ledger, tmp_path):
    # Given a run that FAILED, so its results hold status.json but no report
    fail_in_tuning(ledger, RUN_B)
    boto3.client("s3", region_name=REGION).put_object(
        Bucket="llp-results", Key=f"runs/{RUN_B}/status.json", Body=b"{}")

    run = on_stack("report", RUN_B, "--out", tmp_path, "--no-open")

    assert run.exit_status == 1
    assert "FAILED" in run.err
    assert "no report.html" in run.err


def test_watch_unknown_run_gives_up(ledger):
    clock = Clock()

    with pytest.raises(CliError) as caught:
        commands.watch(watch_target(), RUN_A, 5, 14400, io.StringIO(), sleep=clock.sleep, clock=clock)

    assert "not found" in caught.value.message
    assert clock.now <= commands.UNKNOWN_RUN_GRACE_SECONDS


def test_upload_directory_is_clear(stack, tmp_path):
    run = on_stack("upload", tmp_path)
    assert run.exit_status == 2
    assert "is a directory" in run.err


def test_redirect_not_followed():
    # Given a loopback server that redirects to another host
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://10.255.255.1:5005/_sandbox/outputs")
            self.end_headers()

        def log_message(self, *arguments):
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        run = llp("--endpoint-url", f"http://127.0.0.1:{server.server_port}", "runs")
    finally:
        thread.join(timeout=5)
        server.server_close()

    assert run.exit_status == 2
    assert "HTTP 302" in run.err
