"""Run identity and SageMaker names."""

import pytest

from learner_pipeline.runs import (MAX_RESOURCE_NAME, object_key_problem, MAX_TUNING_JOB_NAME, NAME_PATTERN, RunLayout, RunNames,
                                   run_id_for, run_id_from_manifest_key, run_id_from_name)

ODD_KEYS = [
    "mnist.pkl.gz",
    "a/very/" + "long-folder-name/" * 40 + "mnist.pkl.gz",
    "my uploads/mnist final.pkl.gz",
    "data.v2.2026.12.04/mnist..pkl.gz",
    "données/chiffres-été-数字.pkl.gz",
    "my+uploads/mnist%20final.pkl.gz",
]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_names_valid_for_odd_keys(key):
    # Given an upload under an awkward key
    run_id = run_id_for("ingest-bucket", key, "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", None)

    # When the run's SageMaker names are derived
    names = RunNames.for_run("llp", run_id)

    # Then every name respects SageMaker's pattern and length limits
    assert len(names.tuning_job) <= MAX_TUNING_JOB_NAME
    for name in (names.model, names.endpoint_config, names.endpoint):
        assert len(name) <= MAX_RESOURCE_NAME
        assert NAME_PATTERN.match(name)
    assert NAME_PATTERN.match(names.tuning_job)


def test_run_id_stable_for_same_object():
    first = run_id_for("bucket", "k.pkl.gz", "v1", '"etag"')
    second = run_id_for("bucket", "k.pkl.gz", "v1", '"etag"')
    assert first == second


def test_run_id_differs_per_version():
    assert run_id_for("bucket", "k.pkl.gz", "v1", None) != run_id_for("bucket", "k.pkl.gz", "v2", None)


def test_run_id_uses_etag_without_version():
    quoted = run_id_for("bucket", "k.pkl.gz", None, '"abc"')
    bare = run_id_for("bucket", "k.pkl.gz", None, "abc")
    assert quoted == bare
    assert quoted != run_id_for("bucket", "k.pkl.gz", None, "abd")


def test_run_id_from_name_round_trip():
    run_id = run_id_for("bucket", "key.pkl.gz", "v", None)
    names = RunNames.for_run("llp", run_id)
    assert run_id_from_name("llp", names.tuning_job) == run_id
    assert run_id_from_name("llp", names.endpoint) == run_id
    assert run_id_from_name("llp", names.model) == run_id


def test_run_id_from_foreign_name():
    assert run_id_from_name("llp", "someone-elses-endpoint") is None
    assert run_id_from_name("llp", "llpx-0123456789abcdef") is None


def test_long_prefix_rejected():
    with pytest.raises(ValueError, match="at most 32"):
        RunNames.for_run("a" * 20, "0123456789abcdef")


def test_manifest_key_parsing():
    layout = RunLayout("0123456789abcdef")
    assert run_id_from_manifest_key(layout.manifest_key) == "0123456789abcdef"
    assert run_id_from_manifest_key("runs/0123456789abcdef/data/manifest.json") is None
    assert run_id_from_manifest_key("elsewhere/manifest.json") is None


@pytest.mark.parametrize(("key", "expected"), [
    ("a" * 1017 + ".pkl.gz", None),
    ("é" * 508 + ".pkl.gz", None),
    ("a" * 1018 + ".pkl.gz", "1025 bytes"),
    ("caf\udce9.pkl.gz", "not valid UTF-8"),
])
def test_object_key_problem_limits(key, expected):
    problem = object_key_problem(key)

    if expected is None:
        assert problem is None
    else:
        assert expected in problem
