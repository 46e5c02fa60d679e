"""Hyperparameter search of the local engine: range checks, sampling, trial names, best trial.

Both tuning strategies SageMaker offers for Linear Learner, Bayesian and Random, are served by
seeded random sampling of the request's ParameterRanges, so the sandbox search does not learn
from earlier trials the way SageMaker's Bayesian search does.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TUNING_JOB_NAME_MAX = 32
RESOURCE_NAME_MAX = 63
_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")

# NOTE: SageMaker documents "Auto" as "SageMaker chooses the best scaling" without the rule. The
# sandbox picks logarithmic scaling when a positive range spans at least two orders of
# magnitude, and linear scaling otherwise.
_AUTO_LOG_SPAN = 100.0


@dataclass(frozen=True)
class Trial:
    """One training job of a tuning job: its name and the hyperparameters it trains with."""

    index: int
    name: str
    tuned_hyperparameters: dict[str, str]
    hyperparameters: dict[str, str]
    seed: int


def check_name(kind: str, name: str, max_length: int = RESOURCE_NAME_MAX) -> None:
    """Raise ValueError with SageMaker's wording unless ``name`` is a valid resource name."""
    if not 1 <= len(name) <= max_length:
        raise ValueError(
            f"1 validation error detected: Value '{name}' at '{kind}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {max_length}"
        )
    if not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"1 validation error detected: Value '{name}' at '{kind}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){{0,{max_length - 1}}}"
        )


def check_parameter_ranges(ranges: Mapping[str, Any]) -> None:
    """Raise ValueError when a range is empty, inverted or not valid for its scaling type."""
    for spec in ranges.get("ContinuousParameterRanges", []) or []:
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        _check_bounds(spec["Name"], low, high, spec.get("ScalingType", "Auto"), integer=False)
    for spec in ranges.get("IntegerParameterRanges", []) or []:
        low, high = float(spec["MinValue"]), float(spec["MaxValue"])
        if low != int(low) or high != int(high):
            raise ValueError(f"IntegerParameterRange {spec['Name']} bounds must be integers, got [{low}, {high}]")
        _check_bounds(spec["Name"], low, high, spec.get("ScalingType", "Auto"), integer=True)
    for spec in ranges.get("CategoricalParameterRanges", []) or []:
        if not spec.get("Values"):
            raise ValueError(f"CategoricalParameterRange {spec['Name']} must list at least one value")


def _check_bounds(name: str, low: float, high: float, scaling: str, *, integer: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"ParameterRange {name}: bounds must be finite numbers, got [{low}, {high}]")
    if low > high:
        raise ValueError(f"ParameterRange {name}: MinValue {low} is greater than MaxValue {high}")
    if scaling not in ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic"):
        raise ValueError(f"ParameterRange {name}: invalid ScalingType {scaling}")
    if scaling == "Logarithmic" and low <= 0:
        raise ValueError(f"ParameterRange {name}: Logarithmic scaling requires MinValue greater than 0, got {low}")
    if scaling == "ReverseLogarithmic":
        if integer:
            raise ValueError(f"ParameterRange {name}: ReverseLogarithmic scaling is valid only for continuous ranges")
        if not 0 <= low < high < 1:
            raise ValueError(
                f"ParameterRange {name}: ReverseLogarithmic scaling requires 0 <= MinValue < MaxValue < 1, "
                f"got [{low}, {high}]"
            )


def effective_scaling(scaling: str, low: float, high: float) -> str:
    """Return the scaling the sandbox applies, resolving Auto."""
    if scaling != "Auto":
        return scaling
    if low > 0 and high / low >= _AUTO_LOG_SPAN:
        return "Logarithmic"
    return "Linear"


def sample_continuous(spec: Mapping[str, Any], rng: np.random.Generator) -> float:
    low, high = float(spec["MinValue"]), float(spec["MaxValue"])
    scaling = effective_scaling(spec.get("ScalingType", "Auto"), low, high)
    if low == high:
        return low
    if scaling == "Logarithmic":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    if scaling == "ReverseLogarithmic":
        return float(1.0 - math.exp(rng.uniform(math.log(1.0 - high), math.log(1.0 - low))))
    return float(rng.uniform(low, high))


def sample_integer(spec: Mapping[str, Any], rng: np.random.Generator) -> int:
    low, high = int(float(spec["MinValue"])), int(float(spec["MaxValue"]))
    scaling = effective_scaling(spec.get("ScalingType", "Auto"), low, high)
    if scaling == "Logarithmic":
        # Uniform in log space over [low, high + 1), floored, so every integer is reachable.
        value = math.floor(math.exp(rng.uniform(math.log(low), math.log(high + 1))))
        return int(min(max(value, low), high))
    return int(rng.integers(low, high + 1))


def sample_hyperparameters(ranges: Mapping[str, Any], rng: np.random.Generator) -> dict[str, str]:
    """Draw one value per range, formatted as the strings SageMaker passes to the algorithm."""
    values: dict[str, str] = {}
    for spec in ranges.get("ContinuousParameterRanges", []) or []:
        values[spec["Name"]] = repr(sample_continuous(spec, rng))
    for spec in ranges.get("IntegerParameterRanges", []) or []:
        values[spec["Name"]] = str(sample_integer(spec, rng))
    for spec in ranges.get("CategoricalParameterRanges", []) or []:
        choices = list(spec["Values"])
        values[spec["Name"]] = str(choices[int(rng.integers(len(choices)))])
    return values


def plan_trials(
    tuning_job_name: str,
    config: Mapping[str, Any],
    static_hyperparameters: Mapping[str, str],
    *,
    seed: int = 0,
) -> list[Trial]:
    """Plan every trial of a tuning job: MaxNumberOfTrainingJobs samples with their names.

    Trials are named as SageMaker names them, ``<tuning job>-<3-digit index>-<8 hex digits>``.
    The hyperparameters and training seeds depend only on ``seed`` and the request, so a run
    is reproducible although its job name derives from the upload's random version id. The
    hex suffix derives from the job name.
    """
    rng = np.random.default_rng(seed)
    count = int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"])
    objective = config["HyperParameterTuningJobObjective"]["MetricName"]
    ranges = config.get("ParameterRanges", {})

    trials = []
    for index in range(1, count + 1):
        tuned = sample_hyperparameters(ranges, rng)
        suffix = hashlib.sha256(f"{tuning_job_name}/{index}".encode()).hexdigest()[:8]
        hyperparameters = {**dict(static_hyperparameters), **tuned, "_tuning_objective_metric": objective}
        trials.append(
            Trial(
                index=index,
                name=f"{tuning_job_name}-{index:03d}-{suffix}",
                tuned_hyperparameters=tuned,
                hyperparameters=hyperparameters,
                seed=int(rng.integers(0, 2**31)),
            )
        )
    return trials


def waves(trials: Sequence[Trial], max_parallel: int) -> list[list[Trial]]:
    """Split trials into groups of at most ``max_parallel`` that run at the same time."""
    if max_parallel < 1:
        raise ValueError(f"MaxParallelTrainingJobs must be at least 1, got {max_parallel}")
    return [list(trials[start : start + max_parallel]) for start in range(0, len(trials), max_parallel)]


def best_index(values: Sequence[float | None], objective_type: str) -> int | None:
    """Return the position of the best objective value (None values are failed trials)."""
    candidates = [(value, position) for position, value in enumerate(values) if value is not None and math.isfinite(value)]
    if not candidates:
        return None
    if objective_type == "Minimize":
        return min(candidates, key=lambda item: (item[0], item[1]))[1]
    return max(candidates, key=lambda item: (item[0], -item[1]))[1]

