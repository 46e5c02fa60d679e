"""Benchmark the RecordIO-protobuf writer against SageMaker SDK v2 and a plain memory copy.

The input is the tutorial's training shape: 50,000 rows of 784 float32 features drawn from a
seeded uniform [0, 1) generator, plus float32 labels. Each variant produces the whole encoded
output in memory:

- ``ours``: ``learner_pipeline.recordio.encode_dense_tensor_buffer``, which prepare uses: one
  numpy buffer, returned as a memoryview
- ``ours_bytes``: ``learner_pipeline.recordio.write_numpy_to_dense_tensor`` into an io.BytesIO,
  which is what ``encode_dense_tensor`` returns
- ``sdk``: ``sagemaker.amazon.common.write_numpy_to_dense_tensor`` (SDK v2) into an io.BytesIO
- ``copy``: ``np.frombuffer(output, np.uint8).copy()`` of our output, a lower bound for any writer
- ``copy_bytes``: ``bytes(memoryview(output))``, one copy into a new bytes object

The two copies differ because numpy marks large allocations for transparent huge pages
(``madvise``, see ``numpy._core.multiarray._get_madvise_hugepage``), so its copy takes far
fewer page faults than a copy into bytes, which uses plain malloc. Every writer that returns
bytes pays for those page faults, which is why ``ours`` returns a view of a numpy array.

``main()`` first runs each variant once in a fresh subprocess to read its peak resident set
size, then times each variant several times in this process, and returns the results as a dict.

Run it from the repository root: ``.venv/bin/python benchmarks/bench_recordio.py``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_LAYER = REPO_ROOT / "layers" / "shared"
if str(SHARED_LAYER) not in sys.path:
    sys.path.insert(0, str(SHARED_LAYER))

from learner_pipeline.recordio import (  # noqa: E402
    encode_dense_tensor_buffer,
    write_numpy_to_dense_tensor,
)

ROWS = 50_000
COLUMNS = 784
SEED = 0
VARIANTS = ("ours", "ours_bytes", "sdk", "copy", "copy_bytes")


def make_data(
    rows: int = ROWS, columns: int = COLUMNS, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Return seeded float32 features in [0, 1) and float32 0/1 labels."""
    rng = np.random.default_rng(seed)
    features = rng.random((rows, columns), dtype=np.float32)
    labels = (rng.random(rows, dtype=np.float32) < 0.1).astype(np.float32)
    return features, labels


def write_ours(features: np.ndarray, labels: np.ndarray) -> memoryview:
    return encode_dense_tensor_buffer(features, labels)


def write_ours_bytes(features: np.ndarray, labels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, features, labels)
    return buffer.getvalue()


def write_sdk(features: np.ndarray, labels: np.ndarray) -> bytes:
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    from sagemaker.amazon.common import write_numpy_to_dense_tensor as sdk_write

    buffer = io.BytesIO()
    sdk_write(buffer, features, labels)
    return buffer.getvalue()


def copy_array(output: memoryview) -> np.ndarray:
    return np.frombuffer(output, dtype=np.uint8).copy()


def copy_bytes(output: memoryview) -> bytes:
    return bytes(memoryview(output))


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB.

    Linux keeps ru_maxrss across fork and exec, so a child started by a large parent reports
    the parent's peak. VmHWM in /proc/self/status covers the new process image only.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kib = max_rss / 1024 if sys.platform == "darwin" else max_rss  # bytes on macOS, KiB elsewhere
    return kib / 1024


def time_runs(function: Callable[[], object], runs: int) -> list[float]:
    """Return the wall-clock seconds of each run. Each result is freed before the next run."""
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
        del result
    return seconds


def measure_peak_rss(variant: str, rows: int, columns: int) -> dict[str, float]:
    """Run one variant in a fresh interpreter and return its RSS before and at peak, in MiB."""
    command = [sys.executable, str(Path(__file__).resolve()), "--rss", variant]
    command += ["--rows", str(rows), "--columns", str(columns)]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _rss_child(variant: str, rows: int, columns: int) -> None:
    """Print the peak RSS after building the inputs and after one run of ``variant``."""
    features, labels = make_data(rows, columns)
    if variant == "sdk":
        write_sdk(features[:1], labels[:1])  # import the SDK before the baseline
    output = write_ours(features, labels) if variant.startswith("copy") else memoryview(b"")
    baseline = peak_rss_mib()

    if variant == "ours":
        result: object = write_ours(features, labels)
    elif variant == "ours_bytes":
        result = write_ours_bytes(features, labels)
    elif variant == "sdk":
        result = write_sdk(features, labels)
    elif variant == "copy":
        result = copy_array(output)
    else:
        result = copy_bytes(output)

    peak = peak_rss_mib()
    del result
    print(json.dumps({"baseline_mib": baseline, "peak_mib": peak}))


def main(
    rows: int = ROWS,
    columns: int = COLUMNS,
    ours_runs: int = 5,
    copy_runs: int = 5,
    sdk_runs: int = 3,
    measure_rss: bool = True,
) -> dict[str, object]:
    """Time the variants, check that both writers produce the same bytes, print a table."""
    peak_rss: dict[str, dict[str, float]] = {}
    if measure_rss:
        variants = [name for name in VARIANTS if name != "sdk" or sdk_runs > 0]
        peak_rss = {name: measure_peak_rss(name, rows, columns) for name in variants}

    features, labels = make_data(rows, columns)

    output = write_ours(features, labels)  # warm-up run, and the input of the copy variant
    sdk_output = write_sdk(features, labels) if sdk_runs > 0 else None
    identical = output == sdk_output if sdk_output is not None else None
    identical_bytes = write_ours_bytes(features, labels) == output
    del sdk_output

    seconds = {
        "ours": time_runs(lambda: write_ours(features, labels), ours_runs),
        "ours_bytes": time_runs(lambda: write_ours_bytes(features, labels), ours_runs),
        "sdk": time_runs(lambda: write_sdk(features, labels), sdk_runs),
        "copy": time_runs(lambda: copy_array(output), copy_runs),
        "copy_bytes": time_runs(lambda: copy_bytes(output), copy_runs),
    }
    medians = {name: statistics.median(runs) for name, runs in seconds.items() if runs}

    results: dict[str, object] = {
        "rows": rows,
        "columns": columns,
        "output_bytes": len(output),
        "identical_to_sdk": identical,
        "bytes_identical_to_buffer": identical_bytes,
        "seconds": seconds,
        "median_seconds": medians,
        "sdk_over_ours": medians["sdk"] / medians["ours"] if "sdk" in medians else None,
        "ours_over_copy": medians["ours"] / medians["copy"],
        "ours_over_copy_bytes": medians["ours"] / medians["copy_bytes"],
        "ours_bytes_over_copy_bytes": medians["ours_bytes"] / medians["copy_bytes"],
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
    }
    if peak_rss:
        results["peak_rss_mib"] = peak_rss

    print(format_table(results))
    return results


def format_table(results: dict[str, object]) -> str:
    medians: dict[str, float] = results["median_seconds"]  # type: ignore[assignment]
    runs: dict[str, list[float]] = results["seconds"]  # type: ignore[assignment]
    rss: dict[str, dict[str, float]] = results.get("peak_rss_mib", {})  # type: ignore[assignment]
    megabytes = results["output_bytes"] / 1e6  # type: ignore[operator]

    lines = [
        f"RecordIO writer, {results['rows']:,} x {results['columns']} float32 rows with labels, "
        f"{megabytes:.1f} MB of output, identical to SDK v2: {results['identical_to_sdk']}, "
        f"ours_bytes identical to ours: {results['bytes_identical_to_buffer']}",
        "",
        "| variant | runs | median s | MB/s | peak RSS MiB (before run) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in VARIANTS:
        if name not in medians:
            continue
        memory = rss.get(name)
        memory_text = f"{memory['peak_mib']:.0f} ({memory['baseline_mib']:.0f})" if memory else "-"
        lines.append(
            f"| {name} | {len(runs[name])} | {medians[name]:.4f} | "
            f"{megabytes / medians[name]:,.0f} | {memory_text} |"
        )
    lines.append("")
    if results["sdk_over_ours"] is not None:
        lines.append(f"SDK / ours: {results['sdk_over_ours']:.0f}x")
    lines.append(f"ours / copy: {results['ours_over_copy']:.2f}x")
    lines.append(f"ours / copy_bytes: {results['ours_over_copy_bytes']:.2f}x")
    lines.append(f"ours_bytes / copy_bytes: {results['ours_bytes_over_copy_bytes']:.2f}x")
    return "\n".join(lines)


def _parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS, help="rows to encode (default 50000)")
    parser.add_argument(
        "--columns", type=int, default=COLUMNS, help="features per row (default 784)"
    )
    parser.add_argument("--sdk-runs", type=int, default=3, help="timed SDK runs (0 skips the SDK)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--rss", choices=VARIANTS, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _parse_arguments()
    if arguments.rss:
        _rss_child(arguments.rss, arguments.rows, arguments.columns)
    else:
        measured = main(arguments.rows, arguments.columns, sdk_runs=arguments.sdk_runs)
        if arguments.json:
            arguments.json.write_text(json.dumps(measured, indent=2) + "\n")
