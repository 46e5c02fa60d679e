"""Benchmark each function's cold import and its unzipped size after ``sam build``.

Cold import: a fresh interpreter gets the function's environment as template.yaml resolves it,
with resource names from the sandbox stack under moto, so they are dummy values. It also gets
fake AWS credentials and ``AWS_LAMBDA_FUNCTION_NAME``. It puts the function's layers and code
folder on ``sys.path`` and times ``import app`` with ``time.perf_counter``. The baseline is a fresh interpreter that
imports only boto3 and numpy, timed the same way. Interpreter start-up is outside both timings.
Packages come from the local virtual environment, not from the built layers.

Size: ``sam build --build-dir TMP`` with ``.venv/bin`` first on PATH, then the bytes of every file
under build/<Function>, build/SharedLayer and, for EvaluateFunction, build/PlottingLayer, against
Lambda's 250 MB limit on a function's unzipped code plus layers (262,144,000 bytes).

Run it alone from the repository root: ``.venv/bin/python -m benchmarks.bench_cold_start``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"
BASELINE = "boto3 + numpy"
# Lambda rejects larger code with "Function code combined with layers exceeds the maximum allowed
# size of 262144000 bytes", which is 250 MiB.
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000
FUNCTION_LAYERS = {
    "PrepareFunction": ("SharedLayer",),
    "StartTuningFunction": ("SharedLayer",),
    "DeployFunction": ("SharedLayer",),
    "EvaluateFunction": ("SharedLayer", "PlottingLayer"),
}
FAKE_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # Any AWS call at import time would go to a closed loopback port instead of AWS.
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}

# Runs in the fresh interpreter: argv[1] is a JSON list of folders for sys.path, argv[2] the
# module file to import, or "" for the baseline.
_CHILD_CODE = """
import importlib.util, json, sys, time
paths, module_file = json.loads(sys.argv[1]), sys.argv[2]
sys.path[:0] = paths
start = time.perf_counter()
if module_file:
    spec = importlib.util.spec_from_file_location("app", module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules["app"] = module
    spec.loader.exec_module(module)
else:
    import boto3, numpy
print(json.dumps({"seconds": time.perf_counter() - start, "modules": len(sys.modules)}))
"""


def function_specs() -> dict[str, object]:
    """Return the template's functions, resolved by the sandbox stack inside a moto mock."""
    from moto import mock_aws

    from sandbox.stack import Stack

    os.environ.update({name: value for name, value in FAKE_AWS_ENVIRONMENT.items() if name != "AWS_ENDPOINT_URL"})
    with mock_aws():
        stack = Stack.from_template(TEMPLATE)
    return dict(stack.functions)


def import_once(paths: list[str], module_file: str, environment: dict[str, str]) -> dict[str, float]:
    command = [sys.executable, "-c", _CHILD_CODE, json.dumps(paths), module_file]
    child_environment = {**os.environ, **environment, **FAKE_AWS_ENVIRONMENT}
    child_environment.pop("PYTHONPATH", None)
    completed = subprocess.run(command, cwd=tempfile.gettempdir(), env=child_environment,
                               capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"cold import of {module_file or BASELINE} failed: {completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measure_imports(runs: int = 5) -> dict[str, object]:
    """Time each handler's import and the baseline ``runs`` times each, interleaved."""
    specs = function_specs()
    seconds: dict[str, list[float]] = {BASELINE: [], **{name: [] for name in specs}}
    modules: dict[str, int] = {}

    for _ in range(runs):
        measured = import_once([], "", {})
        seconds[BASELINE].append(measured["seconds"])
        modules[BASELINE] = measured["modules"]
        for name, spec in specs.items():
            paths = [str(path) for path in spec.layer_dirs] + [str(spec.code_dir)]
            environment = {**spec.environment, "AWS_LAMBDA_FUNCTION_NAME": spec.name}
            measured = import_once(paths, str(spec.code_dir / "app.py"), environment)
            seconds[name].append(measured["seconds"])
            modules[name] = measured["modules"]

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    return {
        "seconds": seconds,
        "median_seconds": medians,
        "modules": modules,
        "over_baseline": {name: medians[name] / medians[BASELINE] for name in specs},
    }


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def measure_sizes(build_dir: Path | None = None) -> dict[str, object]:
    """Run ``sam build`` into a temporary folder and return each function's unzipped bytes."""
    with tempfile.TemporaryDirectory(prefix="bench-sam-build-") as temporary:
        build = build_dir or Path(temporary) / "build"
        venv_bin = REPO_ROOT / ".venv" / "bin"
        environment = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
                       "SAM_CLI_TELEMETRY": "0"}
        command = [str(venv_bin / "sam"), "build", "--template-file", str(TEMPLATE), "--build-dir", str(build)]
        completed = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True,
                                   text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"sam build failed (exit {completed.returncode}): {completed.stdout[-1500:]}"
                               f"{completed.stderr[-1500:]}")

        parts = {name: folder_bytes(build / name) for name in {*FUNCTION_LAYERS, "SharedLayer", "PlottingLayer"}}

    totals = {function: sum(parts[name] for name in (function, *layers)) for function, layers in FUNCTION_LAYERS.items()}
    return {
        "part_bytes": parts,
        "total_bytes": totals,
        "limit_bytes": LAMBDA_UNZIPPED_LIMIT_BYTES,
        "share_of_limit": {function: total / LAMBDA_UNZIPPED_LIMIT_BYTES for function, total in totals.items()},
    }


def format_imports(results: dict[str, object]) -> str:
    medians: dict[str, float] = results["median_seconds"]  # type: ignore[assignment]
    runs: dict[str, list[float]] = results["seconds"]  # type: ignore[assignment]
    modules: dict[str, int] = results["modules"]  # type: ignore[assignment]
    ratios: dict[str, float] = results["over_baseline"]  # type: ignore[assignment]

    lines = [
        "| import | runs | median s | modules loaded | / baseline |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| {BASELINE} (baseline) | {len(runs[BASELINE])} | {medians[BASELINE]:.3f} | {modules[BASELINE]} | 1.00x |",
    ]
    for name, ratio in ratios.items():
        lines.append(f"| {name} | {len(runs[name])} | {medians[name]:.3f} | {modules[name]} | {ratio:.2f}x |")
    return "\n".join(lines)


def format_sizes(results: dict[str, object]) -> str:
    parts: dict[str, int] = results["part_bytes"]  # type: ignore[assignment]
    totals: dict[str, int] = results["total_bytes"]  # type: ignore[assignment]
    shares: dict[str, float] = results["share_of_limit"]  # type: ignore[assignment]

    lines = [
        "| function | code kB | layers MB | total MB | share of 250 MB limit |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for function, layers in FUNCTION_LAYERS.items():
        layer_bytes = sum(parts[name] for name in layers)
        lines.append(
            f"| {function} | {parts[function] / 1e3:.0f} | {layer_bytes / 1e6:.1f} | "
            f"{totals[function] / 1e6:.1f} | {shares[function]:.0%} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="cold imports per function (default 5)")
    parser.add_argument("--skip-build", action="store_true", help="skip sam build and the size table")
    arguments = parser.parse_args()
    print(format_imports(measure_imports(arguments.runs)))
    if not arguments.skip_build:
        print()
        print(format_sizes(measure_sizes()))
