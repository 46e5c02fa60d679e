"""Benchmark the whole prepare step against the tutorial's recipe, uploading to an S3 stand-in.

Both variants start from the same gzip'd pickle in the tutorial layout, and each timed run covers
reading the file through to the last upload:

- ``ours``: ``learner_pipeline.dataset.load_dataset`` (gunzip, restricted unpickle, validate),
  then ``learner_pipeline.prepare.prepare_run`` (binarize, RecordIO shards, test split as .npy)
  with a sink that uploads through ``learner_pipeline.aws.storage.Storage.write_bytes``, the
  function's own upload path.
- ``tutorial``: ``pickle.load(gzip.open(f), encoding="latin1")``, the per-row
  ``np.array([t.tolist() for t in ...]).astype("float32")`` conversion of images and labels,
  SageMaker SDK v2 ``write_numpy_to_dense_tensor`` into a BytesIO for train and validation, then
  ``upload_fileobj`` of each buffer, as the tutorial does.

Each variant runs with two sinks:

- ``s3``: uploads go to moto's S3 server (``python -m moto.server``), which runs in its own
  process on 127.0.0.1. So the server's CPU time and its copies of the objects are not counted
  in the measured process, but the client's HTTP and checksum work is.
- ``discard``: bodies are dropped where the upload would start, which leaves the compute only.

Besides the wall time, each run reports the CPU time of the measured process (all its threads)
and, with the ``s3`` sink, the CPU time the server process spent during the run (read from
/proc before and after). On 2 cores, the server's time bounds the end-to-end ratio: an upload
cannot finish long before the server has taken in its bytes.

Each run happens in a fresh interpreter that imports what its variant needs and creates the
bucket before the clock starts, and reports its peak resident set size (VmHWM) before and after
the measured run. The server's objects are deleted before each run.

Run it alone from the repository root: ``.venv/bin/python -m benchmarks.bench_prepare FILE``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import pickle
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_LAYER = REPO_ROOT / "layers" / "shared"
if str(SHARED_LAYER) not in sys.path:
    sys.path.insert(0, str(SHARED_LAYER))

FASHION_SOURCE = Path("/usr/share/datasets/fashion-mnist")
FASHION_PACKAGE = "dataset-fashion-mnist"
VARIANTS = ("ours", "tutorial")
SINKS = ("s3", "discard")
SERVER_START_SECONDS = 60.0
BUCKET = "bench-artifacts"
POSITIVE_LABEL = 0
SHARD_BYTES = 64 * 1024 * 1024  # the template's default ShardMiB
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
}


class FashionDataMissingError(RuntimeError):
    """Debian's Fashion-MNIST files are not installed and could not be installed."""


def ensure_fashion_source(source: Path = FASHION_SOURCE) -> Path:
    """Return the folder of the Fashion-MNIST idx files, installing the Debian package if needed."""
    if (source / "train-images-idx3-ubyte.gz").is_file():
        return source

    install = ["apt-get", "install", "-y", FASHION_PACKAGE]
    if shutil.which("apt-get") is None:
        raise FashionDataMissingError(
            f"{source} has no Fashion-MNIST files and apt-get is not available. Install the "
            f"data with `apt-get install -y {FASHION_PACKAGE}` on Debian or Ubuntu."
        )
    completed = subprocess.run(install, capture_output=True, text=True, check=False)
    if completed.returncode != 0 or not (source / "train-images-idx3-ubyte.gz").is_file():
        raise FashionDataMissingError(
            f"`{' '.join(install)}` failed (exit {completed.returncode}): "
            f"{completed.stderr.strip()[-400:]}. Run `sudo apt-get install -y {FASHION_PACKAGE}` "
            "and retry."
        )
    return source


def build_fashion_pickle(output: Path, source: Path | None = None) -> Path:
    """Write full-scale Fashion-MNIST (50,000/10,000/10,000 x 784) in the tutorial layout."""
    source = source or ensure_fashion_source()
    script = REPO_ROOT / "scripts" / "fashion_mnist_to_pickle.py"
    command = [sys.executable, str(script), str(output), "--source", str(source)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return output


# --- the S3 stand-in, in its own process ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class MotoServer:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far, all threads included."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        # After the command name, utime and stime are the 12th and 13th fields (stat(5) 14 and 15).
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """Start moto's S3 server on a free loopback port, yield it and stop it afterwards."""
    port = _free_port()
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    environment = {**os.environ, **FAKE_AWS_ENVIRONMENT}
    server = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, server)
        yield MotoServer(f"http://127.0.0.1:{port}", server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_for_port(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            stderr = server.stderr.read().decode(errors="replace") if server.stderr else ""
            raise RuntimeError(f"moto server exited with code {server.returncode}: {stderr[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not listen on 127.0.0.1:{port} within {SERVER_START_SECONDS:.0f} s")


def reset_server(endpoint: str) -> None:
    """Delete every bucket and object on the moto server through its reset API."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


# --- the two variants, run inside a child interpreter ---------------------------------------------


class Uploads:
    """Counts the body bytes of each variant and uploads them unless the sink discards them."""

    def __init__(self, s3: object | None) -> None:
        self.s3 = s3
        self.body_bytes = 0

    def count(self, size: int) -> bool:
        """Add a body's size in bytes and return whether to upload it."""
        self.body_bytes += size
        return self.s3 is not None


def prepare_ours(path: Path, uploads: Uploads) -> dict[str, object]:
    from learner_pipeline.aws.storage import Storage
    from learner_pipeline.dataset import LoadLimits, load_dataset
    from learner_pipeline.prepare import PrepareOptions, prepare_run
    from learner_pipeline.runs import RunLayout

    storage = Storage(uploads.s3) if uploads.s3 is not None else None

    def sink(key: str, body: memoryview, content_type: str) -> None:
        if uploads.count(len(body)) and storage is not None:
            storage.write_bytes(BUCKET, key, body, content_type)

    limits = LoadLimits(max_compressed_bytes=1 << 40, max_decompressed_bytes=1 << 40, deadline=None)
    with path.open("rb") as stream:
        dataset = load_dataset(stream, limits)

    options = PrepareOptions(positive_label=POSITIVE_LABEL, shard_bytes=SHARD_BYTES)
    manifest = prepare_run(dataset, RunLayout("bench"), options, sink, source={})
    decoded_bytes = sum(split.images.nbytes + split.labels.nbytes for split in dataset.splits)
    return {"rows": manifest["rows"], "decoded_bytes": decoded_bytes}


def prepare_tutorial(path: Path, uploads: Uploads) -> dict[str, object]:
    import sagemaker.amazon.common as smac

    with gzip.open(path, "rb") as stream:
        train_set, valid_set, test_set = pickle.load(stream, encoding="latin1")

    train_set_vectors = np.array([t.tolist() for t in train_set[0]]).astype("float32")
    train_set_labels = np.where(np.array([t.tolist() for t in train_set[1]]) == 0, 1, 0).astype("float32")
    validation_set_vectors = np.array([t.tolist() for t in valid_set[0]]).astype("float32")
    validation_set_labels = np.where(np.array([t.tolist() for t in valid_set[1]]) == 0, 1, 0).astype("float32")

    train_set_buf = io.BytesIO()
    validation_set_buf = io.BytesIO()
    smac.write_numpy_to_dense_tensor(train_set_buf, train_set_vectors, train_set_labels)
    smac.write_numpy_to_dense_tensor(validation_set_buf, validation_set_vectors, validation_set_labels)
    train_set_buf.seek(0)
    validation_set_buf.seek(0)

    if uploads.count(train_set_buf.getbuffer().nbytes):
        uploads.s3.upload_fileobj(train_set_buf, BUCKET, "tutorial/train/recordio-pb-data")
    if uploads.count(validation_set_buf.getbuffer().nbytes):
        uploads.s3.upload_fileobj(validation_set_buf, BUCKET, "tutorial/validation/recordio-pb-data")
    rows = {"train": len(train_set_labels), "validation": len(validation_set_labels), "test": len(test_set[1])}
    return {"rows": rows}


def run_child(variant: str, sink: str, path: Path, endpoint: str | None) -> dict[str, object]:
    """Time one variant after its imports and the bucket exist; return seconds and peak RSS."""
    import boto3

    from benchmarks.bench_recordio import peak_rss_mib

    if variant == "tutorial":
        import sagemaker.amazon.common  # noqa: F401  (imported before the clock)
    else:
        import learner_pipeline.aws.storage  # noqa: F401
        import learner_pipeline.prepare  # noqa: F401

    s3 = None
    objects_before = 0
    if sink == "s3":
        s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        objects_before = s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)
    uploads = Uploads(s3)
    baseline = peak_rss_mib()

    start = time.perf_counter()
    start_cpu = time.process_time()
    details = prepare_ours(path, uploads) if variant == "ours" else prepare_tutorial(path, uploads)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - start_cpu

    peak = peak_rss_mib()
    uploaded = 0
    if s3 is not None:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        uploaded = sum(item["Size"] for page in pages for item in page.get("Contents", []))

    return {"variant": variant, "sink": sink, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "baseline_mib": baseline, "peak_mib": peak,
            "body_bytes": uploads.body_bytes, "uploaded_bytes": uploaded, "objects_before": objects_before,
            **details}


def measure(variant: str, sink: str, path: Path, server: MotoServer) -> dict[str, object]:
    """Run one variant in a fresh interpreter against an emptied server and return what it measured.

    The server's CPU time is counted from before the child starts to after it ends, so it also
    covers the child's bucket set-up and listing, two small requests next to the upload.
    """
    reset_server(server.url)
    command = [sys.executable, "-m", "benchmarks.bench_prepare", str(path), "--child", variant, "--sink", sink,
               "--endpoint", server.url]
    environment = {**os.environ, **FAKE_AWS_ENVIRONMENT}
    server_cpu_before = server.cpu_seconds()
    completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True,
                               text=True, check=False)
    server_cpu = server.cpu_seconds() - server_cpu_before
    if completed.returncode != 0:
        raise RuntimeError(f"prepare benchmark child {variant}/{sink} failed: {completed.stderr.strip()[-2000:]}")
    return {**json.loads(completed.stdout.strip().splitlines()[-1]), "server_cpu_seconds": server_cpu}


def main(path: Path, ours_runs: int = 5, tutorial_runs: int = 2) -> dict[str, object]:
    """Run each variant with each sink several times in fresh interpreters; return medians and ratios."""
    counts = {"ours": ours_runs, "tutorial": tutorial_runs}
    runs: dict[str, list[dict[str, object]]] = {}
    with moto_server() as server:
        # Runs of one variant alternate between the sinks, so drift on a shared machine hits both.
        for variant in VARIANTS:
            for _ in range(counts[variant]):
                for sink in SINKS:
                    runs.setdefault(f"{variant}/{sink}", []).append(measure(variant, sink, path, server))

    medians = {
        name: {
            "seconds": statistics.median(run["seconds"] for run in measured),
            "cpu_seconds": statistics.median(run["cpu_seconds"] for run in measured),
            "server_cpu_seconds": statistics.median(run["server_cpu_seconds"] for run in measured),
            "peak_mib": statistics.median(run["peak_mib"] for run in measured),
            "baseline_mib": statistics.median(run["baseline_mib"] for run in measured),
        }
        for name, measured in runs.items()
    }

    ours = medians["ours/s3"]
    first = runs["ours/s3"][0]
    decoded_mib = first["decoded_bytes"] / (1024 * 1024)
    results: dict[str, object] = {
        "file": str(path),
        "file_bytes": path.stat().st_size,
        "rows": first["rows"],
        "decoded_mib": decoded_mib,
        "body_bytes": {name: measured[0]["body_bytes"] for name, measured in runs.items()},
        "uploaded_bytes": {name: measured[0]["uploaded_bytes"] for name, measured in runs.items()},
        "runs": runs,
        "medians": medians,
        "ours_peak_over_decoded": ours["peak_mib"] / decoded_mib,
        "ours_growth_over_decoded": (ours["peak_mib"] - ours["baseline_mib"]) / decoded_mib,
    }
    if tutorial_runs > 0:
        results["tutorial_over_ours"] = medians["tutorial/s3"]["seconds"] / ours["seconds"]
        results["tutorial_over_ours_compute"] = medians["tutorial/discard"]["seconds"] / medians["ours/discard"]["seconds"]
        # About the best end-to-end ratio this S3 stand-in allows on 2 cores: the measured process
        # uses one, and ours cannot end long before the server has spent its CPU time on our uploads.
        results["tutorial_over_ours_server"] = medians["tutorial/s3"]["seconds"] / ours["server_cpu_seconds"]
    return results


def format_table(results: dict[str, object]) -> str:
    medians: dict[str, dict[str, float]] = results["medians"]  # type: ignore[assignment]
    runs: dict[str, list[dict]] = results["runs"]  # type: ignore[assignment]
    rows: dict[str, int] = results["rows"]  # type: ignore[assignment]
    body_bytes: dict[str, int] = results["body_bytes"]  # type: ignore[assignment]
    uploaded: dict[str, int] = results["uploaded_bytes"]  # type: ignore[assignment]

    lines = [
        f"Whole prepare on {rows['train']:,}/{rows['validation']:,}/{rows['test']:,} rows "
        f"({results['file_bytes'] / 1e6:.1f} MB gzip'd pickle, {results['decoded_mib']:.0f} MiB "
        "decoded as float32 images and int64 labels), uploading to moto's S3 server in another "
        "process (s3) or discarding the bodies (discard)",
        "",
        "| variant | sink | runs | median s | median CPU s | server CPU s | peak RSS MiB (before run) | body MB "
        "| uploaded MB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for variant in VARIANTS:
        for sink in SINKS:
            name = f"{variant}/{sink}"
            if name not in medians:
                continue
            median = medians[name]
            uploaded_text = f"{uploaded[name] / 1e6:.1f}" if sink == "s3" else "-"
            server_text = f"{median['server_cpu_seconds']:.2f}" if sink == "s3" else "-"
            lines.append(
                f"| {variant} | {sink} | {len(runs[name])} | {median['seconds']:.2f} | {median['cpu_seconds']:.2f} | "
                f"{server_text} | "
                f"{median['peak_mib']:.0f} ({median['baseline_mib']:.0f}) | {body_bytes[name] / 1e6:.1f} | "
                f"{uploaded_text} |"
            )
    lines.append("")
    if "tutorial_over_ours" in results:
        lines.append(f"tutorial / ours, end to end (s3): {results['tutorial_over_ours']:.1f}x")
        lines.append(f"tutorial / ours, compute only (discard): {results['tutorial_over_ours_compute']:.1f}x")
        lines.append(
            f"tutorial / S3 server CPU during ours (about the best end-to-end ratio with this S3 stand-in): "
            f"{results['tutorial_over_ours_server']:.1f}x"
        )
    lines.append(f"ours peak RSS (s3) / decoded dataset: {results['ours_peak_over_decoded']:.2f}x")
    lines.append(f"ours RSS growth during the run (s3) / decoded dataset: {results['ours_growth_over_decoded']:.2f}x")
    return "\n".join(lines)


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="dataset in the tutorial's mnist.pkl.gz layout")
    parser.add_argument("--ours-runs", type=int, default=5, help="runs of our prepare per sink (default 5)")
    parser.add_argument("--tutorial-runs", type=int, default=2,
                        help="runs of the tutorial recipe per sink (default 2)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--sink", choices=SINKS, default="s3", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse_arguments()
    if arguments.child:
        print(json.dumps(run_child(arguments.child, arguments.sink, arguments.file, arguments.endpoint)))
    else:
        measured = main(arguments.file, arguments.ours_runs, arguments.tutorial_runs)
        print(format_table(measured))
