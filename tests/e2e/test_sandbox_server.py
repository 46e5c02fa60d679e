"""The sandbox server (python -m sandbox.server) driven by llp over loopback HTTP, end to end."""

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from operator_cli.__main__ import main as llp_main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 60
RUN_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20


def llp(*arguments):
    out, err = io.StringIO(), io.StringIO()
    status = llp_main([str(argument) for argument in arguments], stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Start the server on a free loopback port in a subprocess; stop it with SIGTERM afterwards."""
    directory = tmp_path_factory.mktemp("sandbox-server")
    outputs_file = directory / "outputs.json"
    console = (directory / "console.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.server",
            "--port",
            "0",
            "--outputs-file",
            str(outputs_file),
            "--function-log",
            str(directory / "functions.jsonl"),
        ],
        cwd=ROOT,
        stdout=console,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not outputs_file.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        if not outputs_file.is_file():
            pytest.fail(
                f"the sandbox server did not start: {(directory / 'console.log').read_text()[-2000:]}"
            )

        description = json.loads(outputs_file.read_text())
        yield {"process": process, "console": directory / "console.log", **description}
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        console.close()


@pytest.fixture(scope="module")
def finished_run(server, mnist_sample, tmp_path_factory):
    url = server["endpoint_url"]
    started = time.monotonic()

    upload = llp("--endpoint-url", url, "upload", mnist_sample)
    run_id = upload[1].strip()
    watch = llp(
        "--endpoint-url",
        url,
        "watch",
        run_id,
        "--interval",
        "0.5",
        "--timeout",
        RUN_TIMEOUT_SECONDS,
    )
    results = tmp_path_factory.mktemp("llp-results")
    report = llp("--endpoint-url", url, "report", run_id, "--out", results, "--no-open")

    return {
        "run_id": run_id,
        "upload": upload,
        "watch": watch,
        "report": report,
        "results": results,
        "seconds": time.monotonic() - started,
    }


def test_server_listens_on_loopback(server):
    assert server["endpoint_url"].startswith("http://127.0.0.1:")
    assert server["outputs"]["IngestBucketName"]


def test_upload_prints_run_id(finished_run):
    status, out, err = finished_run["upload"]

    assert status == 0, err
    assert len(out.strip()) == 16


def test_watch_reaches_succeeded(finished_run):
    status, out, err = finished_run["watch"]

    assert status == 0, out + err
    assert f"run {finished_run['run_id']}: SUCCEEDED" in out
    for stage in ("PREPARING", "TUNING", "DEPLOYING", "EVALUATING"):
        assert f"run {finished_run['run_id']} {stage}" in out


def test_report_downloads_html(finished_run):
    status, out, err = finished_run["report"]

    report = finished_run["results"] / finished_run["run_id"] / "report.html"
    assert status == 0, err
    assert report.is_file()
    assert "<html" in report.read_text(encoding="utf-8").lower()


def test_runs_lists_the_run(server, finished_run):
    status, out, err = llp("--endpoint-url", server["endpoint_url"], "runs")

    assert status == 0, err
    assert f"{finished_run['run_id']}  SUCCEEDED" in out


def test_run_within_bound(finished_run):
    assert finished_run["seconds"] < RUN_TIMEOUT_SECONDS + 15


def test_server_stops_on_sigterm(server, finished_run):
    # Runs last in this module: the other tests need the server.
    process = server["process"]

    process.terminate()
    process.wait(timeout=STOP_TIMEOUT_SECONDS)

    assert process.returncode == 0
    assert "sandbox server stopped" in server["console"].read_text()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com"])
def test_server_rejects_public_host(host, capsys):
    from sandbox.server import main as server_main

    status = server_main(["--host", host, "--port", "0"])

    assert status == 2
    assert f"--host {host}" in capsys.readouterr().err.replace("'", "")
