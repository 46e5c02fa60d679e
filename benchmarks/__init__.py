"""Benchmarks of the pipeline: `python -m benchmarks` runs them all and writes RESULTS.md."""
