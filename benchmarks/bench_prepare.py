"""Benchmark the whole prepare step against the tutorial's recipe, both uploading to moto S3.

Both variants start from the same gzip'd pickle in the tutorial layout and end with objects in a
moto bucket, so each timed run covers reading the file through to the last upload:

- ``ours``: ``learner_pipeline.dataset.load_dataset`` (gunzip, restricted unpickle, validate),
  then ``learner_pipeline.prepare.prepare_run`` (binarize, RecordIO shards, test split as .npy)
  with a sink that calls ``put_object`` on the bucket.
- ``tutorial``: ``pickle.load(gzip.open(f), encoding="latin1")``, the per-row
  ``np.array([t.tolist() for t in ...]).astype("float32")`` conversion of images and labels,
  SageMaker SDK v2 ``write_numpy_to_dense_tensor`` into a BytesIO for train and validation, then
  ``upload_fileobj`` of each buffer, as the tutorial does.

Each run happens in a fresh interpreter that imports everything and creates the bucket before the
clock starts, and reports its peak resident set size (VmHWM) before and after the measured run.
moto keeps the uploaded objects in the same process (larger ones spill to temporary files), so
the peak includes moto's copies of what was uploaded, for both variants alike.

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
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_LAYER = REPO_ROOT / "layers" / "shared"
if str(SHARED_LAYER) not in sys.path:
    sys.path.insert(0, str(SHARED_LAYER))

FASHION_SOURCE = Path("/usr/share/datasets/fashion-mnist")
FASHION_PACKAGE = "dataset-fashion-mnist"
VARIANTS = ("ours", "tutorial")
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


# --- the two variants, run inside a child interpreter ---------------------------------------------


def prepare_ours(path: Path, s3: object) -> dict[str, object]:
    from learner_pipeline.dataset import LoadLimits, load_dataset
    from learner_pipeline.prepare import PrepareOptions, prepare_run
    from learner_pipeline.runs import RunLayout

    def upload(key: str, body: bytes, content_type: str) -> None:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType=content_type)

    limits = LoadLimits(max_compressed_bytes=1 << 40, max_decompressed_bytes=1 << 40, deadline=None)
    with path.open("rb") as stream:
        dataset = load_dataset(stream, limits)

    options = PrepareOptions(positive_label=POSITIVE_LABEL, shard_bytes=SHARD_BYTES)
    manifest = prepare_run(dataset, RunLayout("bench"), options, upload, source={})
    decoded_bytes = sum(split.images.nbytes + split.labels.nbytes for split in dataset.splits)
    return {"rows": manifest["rows"], "decoded_bytes": decoded_bytes}


def prepare_tutorial(path: Path, s3: object) -> dict[str, object]:
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

    s3.upload_fileobj(train_set_buf, BUCKET, "tutorial/train/recordio-pb-data")
    s3.upload_fileobj(validation_set_buf, BUCKET, "tutorial/validation/recordio-pb-data")
    rows = {"train": len(train_set_labels), "validation": len(validation_set_labels), "test": len(test_set[1])}
    return {"rows": rows}


def run_child(variant: str, path: Path) -> dict[str, object]:
    """Time one variant after its imports and the bucket exist; return seconds and peak RSS."""
    import boto3
    import sagemaker.amazon.common  # noqa: F401  (imported before the clock for both variants)
    from moto import mock_aws

    from benchmarks.bench_recordio import peak_rss_mib

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        baseline = peak_rss_mib()

        start = time.perf_counter()
        details = prepare_ours(path, s3) if variant == "ours" else prepare_tutorial(path, s3)
        seconds = time.perf_counter() - start

        peak = peak_rss_mib()
        listed = s3.list_objects_v2(Bucket=BUCKET)
        uploaded = sum(item["Size"] for item in listed.get("Contents", []))

    return {"variant": variant, "seconds": seconds, "baseline_mib": baseline, "peak_mib": peak,
            "uploaded_bytes": uploaded, **details}


def measure(variant: str, path: Path) -> dict[str, object]:
    """Run one variant in a fresh interpreter and return what it measured."""
    command = [sys.executable, "-m", "benchmarks.bench_prepare", str(path), "--child", variant]
    environment = {**os.environ, **FAKE_AWS_ENVIRONMENT}
    completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True,
                               text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"prepare benchmark child {variant!r} failed: {completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(path: Path, ours_runs: int = 5, tutorial_runs: int = 2) -> dict[str, object]:
    """Run each variant several times in fresh interpreters; return medians and ratios."""
    runs = {
        "ours": [measure("ours", path) for _ in range(ours_runs)],
        "tutorial": [measure("tutorial", path) for _ in range(tutorial_runs)],
    }
    medians = {
        name: {
            "seconds": statistics.median(run["seconds"] for run in measured),
            "peak_mib": statistics.median(run["peak_mib"] for run in measured),
            "baseline_mib": statistics.median(run["baseline_mib"] for run in measured),
        }
        for name, measured in runs.items() if measured
    }

    ours = runs["ours"][0]
    decoded_mib = ours["decoded_bytes"] / (1024 * 1024)
    results: dict[str, object] = {
        "file": str(path),
        "file_bytes": path.stat().st_size,
        "rows": ours["rows"],
        "decoded_mib": decoded_mib,
        "uploaded_bytes": {name: measured[0]["uploaded_bytes"] for name, measured in runs.items() if measured},
        "runs": runs,
        "medians": medians,
        "ours_peak_over_decoded": medians["ours"]["peak_mib"] / decoded_mib,
        "ours_growth_over_decoded": (medians["ours"]["peak_mib"] - medians["ours"]["baseline_mib"]) / decoded_mib,
    }
    if "tutorial" in medians:
        results["tutorial_over_ours"] = medians["tutorial"]["seconds"] / medians["ours"]["seconds"]
    return results


def format_table(results: dict[str, object]) -> str:
    medians: dict[str, dict[str, float]] = results["medians"]  # type: ignore[assignment]
    runs: dict[str, list[dict]] = results["runs"]  # type: ignore[assignment]
    rows: dict[str, int] = results["rows"]  # type: ignore[assignment]
    uploaded: dict[str, int] = results["uploaded_bytes"]  # type: ignore[assignment]

    lines = [
        f"Whole prepare on {rows['train']:,}/{rows['validation']:,}/{rows['test']:,} rows "
        f"({results['file_bytes'] / 1e6:.1f} MB gzip'd pickle, {results['decoded_mib']:.0f} MiB "
        "decoded as float32 images and int64 labels), uploading to moto S3",
        "",
        "| variant | runs | median s | peak RSS MiB (before run) | uploaded MB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in VARIANTS:
        if name not in medians:
            continue
        median = medians[name]
        lines.append(
            f"| {name} | {len(runs[name])} | {median['seconds']:.2f} | "
            f"{median['peak_mib']:.0f} ({median['baseline_mib']:.0f}) | {uploaded[name] / 1e6:.1f} |"
        )
    lines.append("")
    if "tutorial_over_ours" in results:
        lines.append(f"tutorial / ours: {results['tutorial_over_ours']:.1f}x")
    lines.append(f"ours peak RSS / decoded dataset: {results['ours_peak_over_decoded']:.2f}x")
    lines.append(f"ours RSS growth during the run / decoded dataset: {results['ours_growth_over_decoded']:.2f}x")
    return "\n".join(lines)


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="dataset in the tutorial's mnist.pkl.gz layout")
    parser.add_argument("--ours-runs", type=int, default=5, help="runs of our prepare (default 5)")
    parser.add_argument("--tutorial-runs", type=int, default=2, help="runs of the tutorial recipe (default 2)")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse_arguments()
    if arguments.child:
        print(json.dumps(run_child(arguments.child, arguments.file)))
    else:
        measured = main(arguments.file, arguments.ours_runs, arguments.tutorial_runs)
        print(format_table(measured))
