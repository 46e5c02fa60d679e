"""template.yaml: lint, SAM translation, the image table, and `sam validate` / `sam build`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sandbox.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CHAIN = {"PrepareFunction", "StartTuningFunction", "DeployFunction", "EvaluateFunction"}
FUNCTIONS = CHAIN | {"RecordFailureFunction"}


class CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation short-form tags as plain values."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


CloudFormationLoader.add_multi_constructor("!", _tag)


def raw_template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)


def sam_command() -> list[str]:
    executable = Path(sys.executable).with_name("sam")
    return [str(executable)] if executable.exists() else [shutil.which("sam") or "sam"]


def test_cfn_lint_clean():
    result = subprocess.run([str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_translates_to_chain_functions():
    stack = Stack.from_template(TEMPLATE)
    assert set(stack.functions) == FUNCTIONS


def test_every_function_has_a_rule():
    stack = Stack.from_template(TEMPLATE)
    targeted = {target.function.logical_id for rule in stack.rules.values() for target in rule.targets
                if target.function is not None}
    assert targeted == FUNCTIONS


def test_plotting_layer_only_on_evaluate():
    functions = raw_template()["Resources"]
    with_plotting = {name for name, resource in functions.items()
                     if {"Ref": "PlottingLayer"} in (resource.get("Properties", {}).get("Layers") or [])}
    assert with_plotting == {"EvaluateFunction"}


def test_tutorial_defaults():
    parameters = raw_template()["Parameters"]
    assert parameters["PositiveLabel"]["Default"] == 0
    assert parameters["MaxJobs"]["Default"] == 6
    assert parameters["MaxParallelJobs"]["Default"] == 2
    assert (parameters["WdMin"]["Default"], parameters["WdMax"]["Default"]) == ("1e-7", "1")
    assert (parameters["LearningRateMin"]["Default"], parameters["LearningRateMax"]["Default"]) == ("1e-5", "1")
    assert (parameters["MiniBatchSizeMin"]["Default"], parameters["MiniBatchSizeMax"]["Default"]) == (100, 2000)
    assert parameters["ObjectiveMetric"]["Default"] == "validation:binary_f_beta"
    assert parameters["TrainingInstanceType"]["Default"] == "ml.c4.xlarge"
    assert parameters["HostingInstanceType"]["Default"] == "ml.m4.xlarge"
    assert parameters["KeepEndpoint"]["Default"] == "false"


def test_image_table_matches_sdk():
    # The SDK v2 registry is the source of truth for Linear Learner's ECR image per region.
    image_uris = pytest.importorskip("sagemaker.image_uris")
    table = raw_template()["Mappings"]["LinearLearnerImage"]
    registry = image_uris.config_for_framework("linear-learner")["versions"]["1"]["registries"]
    assert set(table) == set(registry)
    for region, row in table.items():
        assert row["Uri"] == image_uris.retrieve("linear-learner", region), region


def test_sam_validate_lint():
    result = subprocess.run([*sam_command(), "validate", "--lint", "--template-file", str(TEMPLATE),
                             "--region", "us-east-1"], capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """Run `sam build` once for the tests below; it downloads the layers' packages from PyPI."""
    root = tmp_path_factory.mktemp("sam")
    # sam build looks for python3.13 on PATH; the virtual environment running the tests provides it.
    environment = {**os.environ, "SAM_CLI_TELEMETRY": "0",
                   "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([*sam_command(), "build", "--template-file", str(TEMPLATE), "--build-dir",
                             str(root / "build"), "--cache-dir", str(root / "cache")],
                            capture_output=True, text=True, check=False, cwd=ROOT, env=environment, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return root / "build"


def _tree_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


@pytest.mark.slow
def test_sam_build_functions_and_layers(build_dir):
    for function in FUNCTIONS:
        assert (build_dir / function / "app.py").exists(), function
    assert (build_dir / "SharedLayer" / "python" / "learner_pipeline" / "workflow.py").exists()
    assert (build_dir / "SharedLayer" / "python" / "numpy").is_dir()
    assert (build_dir / "PlottingLayer" / "python" / "matplotlib").is_dir()


@pytest.mark.slow
def test_sdk_not_in_any_package(build_dir):
    assert not list(build_dir.glob("**/sagemaker/__init__.py"))


@pytest.mark.slow
def test_evaluate_package_fits_lambda_limit(build_dir):
    # Lambda's limit: a function and all its layers at most 250 MB unzipped. The plotting layer
    # reuses the shared layer's numpy instead of shipping its own.
    total = sum(_tree_bytes(build_dir / name) for name in ("EvaluateFunction", "SharedLayer", "PlottingLayer"))
    assert total < 250 * 1000 * 1000, f"{total / 1e6:.1f} MB"
    assert not (build_dir / "PlottingLayer" / "python" / "numpy").exists()


KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BUCKETS = ("IngestBucket", "ArtifactsBucket", "ResultsBucket")


def _role_sids(stack: Stack, role: str) -> set:
    return {statement.get("Sid") for policy in stack.properties(role).get("Policies", [])
            for statement in policy["PolicyDocument"]["Statement"]}


def _function_roles(stack: Stack) -> list[str]:
    return [stack.cloudformation["Resources"][name]["Properties"]["Role"]["Fn::GetAtt"][0] for name in FUNCTIONS]


def test_kms_key_encrypts_buckets():
    stack = Stack.from_template(TEMPLATE, {"KmsKeyArn": KEY})
    for bucket in BUCKETS:
        rule = stack.properties(bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY}, bucket
        assert rule["BucketKeyEnabled"] is True
    for role in [*_function_roles(stack), "SageMakerExecutionRole"]:
        assert "UseBucketKey" in _role_sids(stack, role), role


def test_default_uses_s3_managed_keys():
    stack = Stack.from_template(TEMPLATE)
    for bucket in BUCKETS:
        rule = stack.properties(bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}, bucket
    for role in [*_function_roles(stack), "SageMakerExecutionRole"]:
        assert "UseBucketKey" not in _role_sids(stack, role), role
