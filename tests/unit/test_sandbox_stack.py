"""The sandbox stack loader: intrinsics, parameters, physical names, rules and pattern matching."""

import json
import os
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.s3.models import s3_backends

from sandbox import events
from sandbox.handlers import StackFunctions, load_handler
from sandbox.intrinsics import TemplateError
from sandbox.patterns import matches
from sandbox.runner import Sandbox
from sandbox.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"

SMALL_TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  NamePrefix:
    Type: String
    Default: demo
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Retries:
    Type: Number
    Default: 1
  Zones:
    Type: CommaDelimitedList
    Default: "a,b,c"
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsNotProd: !Not [!Condition IsProd]
  ProdAndNamed: !And [!Condition IsProd, !Equals [!Ref NamePrefix, demo]]
  ProdOrNamed: !Or [!Condition IsProd, !Equals [!Ref NamePrefix, demo]]
Mappings:
  Images:
    us-east-1:
      Uri: 111.dkr.ecr.us-east-1.amazonaws.com/img:1
Globals:
  Function:
    Runtime: python3.13
    Handler: app.lambda_handler
    Timeout: 30
    Layers: [!Ref Shared]
    Environment:
      Variables:
        TABLE: !Ref Table
        PREFIX: !Ref NamePrefix
Resources:
  Uploads:
    Type: AWS::S3::Bucket
    Properties:
      VersioningConfiguration: {Status: Enabled}
      NotificationConfiguration:
        EventBridgeConfiguration: {EventBridgeEnabled: true}
  Named:
    Type: AWS::S3::Bucket
    Properties:
      BucketName: !Sub "${NamePrefix}-named-${AWS::AccountId}"
  ProdOnly:
    Type: AWS::S3::Bucket
    Condition: IsProd
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: run_id, AttributeType: S}]
      KeySchema: [{AttributeName: run_id, KeyType: HASH}]
  Topic:
    Type: AWS::SNS::Topic
  Failures:
    Type: AWS::SQS::Queue
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: worker/
      MemorySize: 256
      Environment:
        Variables:
          IMAGE: !FindInMap [Images, !Ref "AWS::Region", Uri]
          FALLBACK: !FindInMap [Images, eu-west-9, Uri, {DefaultValue: none}]
          TOPIC: !Ref Topic
          QUEUE_URL: !Ref Failures
          QUEUE_ARN: !GetAtt Failures.Arn
          BUCKET_ARN: !GetAtt Uploads.Arn
          JOINED: !Join ["/", [!Ref NamePrefix, !Select [1, !Ref Zones]]]
          SPLIT_LAST: !Select [2, !Split [",", "x,y,z"]]
          LITERAL: !Sub "${!NotAVariable}-${AWS::Region}-${AWS::StackName}"
          MODE: !If [IsProd, production, !Ref "AWS::NoValue"]
          NOT_PROD: !If [IsNotProd, "yes", "no"]
          AND_OR: !Join ["", [!If [ProdAndNamed, "and", "-"], !If [ProdOrNamed, "or", "-"]]]
          RETRIES: !Ref Retries
          ENABLED: true
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        DestinationConfig:
          OnFailure:
            Type: SQS
            Destination: !GetAtt Failures.Arn
      Events:
        Uploaded:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.s3]
              detail-type: [Object Created]
              detail:
                bucket:
                  name: [!Ref Uploads]
                object:
                  key: [{prefix: incoming/}]
Outputs:
  UploadsName:
    Value: !Ref Uploads
  ProdBucket:
    Condition: IsProd
    Value: !Ref ProdOnly
"""

WORKER_APP = '''
import os

IMPORTED_TABLE = os.environ["TABLE"]


def lambda_handler(event, context):
    return {
        "table": IMPORTED_TABLE,
        "prefix": os.environ["PREFIX"],
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "key": event["detail"]["object"]["key"],
    }
'''


@pytest.fixture
def small_template(tmp_path):
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / "app.py").write_text(WORKER_APP)
    (tmp_path / "layer").mkdir()
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(SMALL_TEMPLATE))
    return path


@pytest.fixture
def small_stack(small_template):
    return Stack.from_template(small_template)


@pytest.fixture(scope="module")
def project_stack():
    return Stack.from_template(ROOT / "template.yaml")


def _s3_event(bucket, key, **overrides):
    fields = {"size": 10, "etag": '"abc"', "sequencer": "01", "region": REGION, "account_id": ACCOUNT}
    fields.update(overrides)
    return events.s3_object_created(bucket=bucket, key=key, **fields)


def _tuning_event(name, status):
    moment = datetime(2026, 1, 1)
    return events.tuning_job_state_change(
        name=name,
        arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:hyper-parameter-tuning-job/{name}",
        status=status,
        config={},
        training_job_definition=None,
        training_job_status_counters={},
        objective_status_counters={},
        creation_time=moment,
        last_modified_time=moment,
        region=REGION,
        account_id=ACCOUNT,
    )


def _endpoint_event(name, status):
    moment = datetime(2026, 1, 1)
    return events.endpoint_state_change(
        name=name,
        arn=f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/{name}",
        config_name=f"{name}-config",
        status=status,
        production_variants=[],
        creation_time=moment,
        last_modified_time=moment,
        region=REGION,
        account_id=ACCOUNT,
    )


# Intrinsics and parameters


def test_intrinsics_resolve_in_environment(small_stack):
    # Given the Worker function of a template that uses every supported intrinsic
    environment = small_stack.functions["Worker"].environment
    uploads = small_stack.physical("Uploads").name
    failures = small_stack.physical("Failures").name

    # Then each variable has the value CloudFormation would compute
    assert environment["IMAGE"] == "111.dkr.ecr.us-east-1.amazonaws.com/img:1"
    assert environment["FALLBACK"] == "none"
    assert environment["TOPIC"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:{small_stack.physical('Topic').name}"
    assert environment["QUEUE_URL"] == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{failures}"
    assert environment["QUEUE_ARN"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{failures}"
    assert environment["BUCKET_ARN"] == f"arn:aws:s3:::{uploads}"
    assert environment["JOINED"] == "demo/b"
    assert environment["SPLIT_LAST"] == "z"
    assert environment["LITERAL"] == "${NotAVariable}-us-east-1-sandbox"
    assert environment["NOT_PROD"] == "yes"
    assert environment["AND_OR"] == "-or"
    assert environment["RETRIES"] == "1"
    assert environment["ENABLED"] == "true"


def test_intrinsics_no_value_drops_key(small_stack):
    assert "MODE" not in small_stack.functions["Worker"].environment


def test_globals_merge_into_function(small_stack):
    worker = small_stack.functions["Worker"]

    assert worker.environment["TABLE"] == small_stack.physical("Table").name
    assert worker.environment["PREFIX"] == "demo"
    assert worker.timeout_seconds == 30
    assert worker.memory_mb == 256
    assert worker.handler == "app.lambda_handler"
    assert worker.code_dir == small_stack.template_path.parent / "worker"
    assert worker.layer_dirs == (small_stack.template_path.parent / "layer",)


def test_event_invoke_config_read(small_stack):
    worker = small_stack.functions["Worker"]

    assert worker.maximum_retry_attempts == 1
    assert worker.on_failure_destination_arn == small_stack.physical("Failures").get_att("Arn")


def test_parameter_override_changes_conditions(small_template):
    stack = Stack.from_template(small_template, {"Stage": "prod", "NamePrefix": "other"})
    environment = stack.functions["Worker"].environment

    assert environment["MODE"] == "production"
    assert environment["NOT_PROD"] == "no"
    assert environment["AND_OR"] == "-or"
    assert "ProdOnly" in stack.resources
    assert stack.outputs()["ProdBucket"] == stack.physical("ProdOnly").name


def test_false_condition_drops_resource(small_stack):
    assert "ProdOnly" not in small_stack.resources
    assert "ProdBucket" not in small_stack.outputs()


def test_parameters_unknown_rejected(small_template):
    with pytest.raises(TemplateError, match="unknown template parameter"):
        Stack.from_template(small_template, {"Nope": "1"})


def test_parameters_allowed_values_enforced(small_template):
    with pytest.raises(TemplateError, match="AllowedValues"):
        Stack.from_template(small_template, {"Stage": "qa"})


def test_parameters_number_checked(small_template):
    with pytest.raises(TemplateError, match="Number"):
        Stack.from_template(small_template, {"Retries": "many"})


def test_get_att_unknown_attribute_rejected(small_stack):
    with pytest.raises(TemplateError, match="Fn::GetAtt Uploads.Nope"):
        small_stack.resolve({"Fn::GetAtt": ["Uploads", "Nope"]})


def test_unsupported_intrinsic_rejected(small_stack):
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        small_stack.resolve({"Fn::ImportValue": "Elsewhere"})


def test_ref_missing_resource_rejected(small_stack):
    with pytest.raises(TemplateError, match="Missing"):
        small_stack.resolve({"Ref": "Missing"})


# Physical names


def test_physical_names_deterministic(small_template):
    first = Stack.from_template(small_template).physical_ids()
    second = Stack.from_template(small_template).physical_ids()

    assert first == second


def test_physical_names_depend_on_stack_name(small_template):
    default = Stack.from_template(small_template).physical("Uploads").name
    other = Stack.from_template(small_template, stack_name="other").physical("Uploads").name

    assert default != other
    assert other.startswith("other-uploads-")


def test_bucket_names_valid_for_s3(project_stack):
    for logical_id in project_stack.resources_of_type("AWS::S3::Bucket"):
        name = project_stack.physical(logical_id).name
        assert name == name.lower(), name
        assert 3 <= len(name) <= 63, name
        assert name.startswith(f"sandbox-{logical_id.lower()}-"), name


def test_explicit_name_honoured(small_stack):
    assert small_stack.physical("Named").name == f"demo-named-{ACCOUNT}"


def test_generated_names_fit_limits(tmp_path):
    # Given a stack name long enough to overflow a Lambda function name
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  AVeryLongLogicalIdForAQueueThatKeepsGoing:\n    Type: AWS::SQS::Queue\n"
                    "    Properties: {FifoQueue: true}\n")
    stack = Stack.from_template(path, stack_name="s" * 90)

    name = stack.physical("AVeryLongLogicalIdForAQueueThatKeepsGoing").name

    assert len(name) <= 80
    assert name.endswith(".fifo")


# The project template


def test_project_functions_loaded(project_stack):
    assert set(project_stack.functions) == {"PrepareFunction", "StartTuningFunction", "DeployFunction", "EvaluateFunction",
                                            "RecordFailureFunction"}
    for spec in project_stack.functions.values():
        assert (spec.code_dir / "app.py").is_file(), spec.code_dir
        assert ROOT / "layers" / "shared" in spec.layer_dirs


def test_project_rules_target_functions(project_stack):
    targets = {
        target.function.logical_id
        for rule in project_stack.rules.values()
        for target in rule.targets
        if target.function is not None
    }

    assert targets == set(project_stack.functions)


def test_ingest_upload_routes_to_prepare(project_stack):
    ingest = project_stack.physical("IngestBucket").name
    event = _s3_event(ingest, "uploads/mnist.pkl.gz", version_id="v1")

    assert [spec.logical_id for spec in project_stack.functions_for(event)] == ["PrepareFunction"]


def test_ingest_other_suffix_ignored(project_stack):
    ingest = project_stack.physical("IngestBucket").name

    assert project_stack.functions_for(_s3_event(ingest, "notes.txt")) == []


def test_manifest_routes_to_start_tuning(project_stack):
    artifacts = project_stack.physical("ArtifactsBucket").name
    event = _s3_event(artifacts, "runs/0123456789abcdef/manifest.json")

    assert [spec.logical_id for spec in project_stack.functions_for(event)] == ["StartTuningFunction"]


def test_shards_in_artifacts_ignored(project_stack):
    artifacts = project_stack.physical("ArtifactsBucket").name
    event = _s3_event(artifacts, "runs/0123456789abcdef/data/train/shard-00000.rec")

    assert project_stack.functions_for(event) == []


def test_pkl_in_artifacts_not_prepared(project_stack):
    # The bucket name, not only the suffix, selects the prepare rule.
    artifacts = project_stack.physical("ArtifactsBucket").name

    assert project_stack.functions_for(_s3_event(artifacts, "copy.pkl.gz")) == []


@pytest.mark.parametrize("status", ["Completed", "Failed", "Stopped"])
def test_tuning_end_routes_to_deploy(project_stack, status):
    event = _tuning_event("llp-0123456789abcdef", status)

    assert [spec.logical_id for spec in project_stack.functions_for(event)] == ["DeployFunction"]


@pytest.mark.parametrize("name, status", [("llp-0123456789abcdef", "InProgress"), ("other-0123", "Completed")])
def test_tuning_other_events_ignored(project_stack, name, status):
    assert project_stack.functions_for(_tuning_event(name, status)) == []


@pytest.mark.parametrize("status", ["InService", "IN_SERVICE", "Failed"])
def test_endpoint_end_routes_to_evaluate(project_stack, status):
    event = _endpoint_event("llp-0123456789abcdef", status)

    assert [spec.logical_id for spec in project_stack.functions_for(event)] == ["EvaluateFunction"]


@pytest.mark.parametrize("name, status", [("llp-0123456789abcdef", "Creating"), ("llp-0123456789abcdef", "Deleting"), ("x-1", "InService")])
def test_endpoint_other_events_ignored(project_stack, name, status):
    assert project_stack.functions_for(_endpoint_event(name, status)) == []


def test_parameter_prefix_reaches_rules(tmp_path):
    stack = Stack.from_template(ROOT / "template.yaml", {"NamePrefix": "alt"})

    assert stack.functions_for(_tuning_event("llp-0123", "Completed")) == []
    assert [spec.logical_id for spec in stack.functions_for(_tuning_event("alt-0123", "Completed"))] == ["DeployFunction"]


@pytest.mark.parametrize("value", ["abc", "-1", "1,2", "inf"])
def test_range_parameter_not_number_rejected(value):
    # Given a tuning range bound that is not a positive decimal number
    # When the project's stack reads it, Then it is rejected as CloudFormation would at deploy time
    with pytest.raises(TemplateError, match="WdMin"):
        Stack.from_template(ROOT / "template.yaml", {"WdMin": value})


@pytest.mark.parametrize("value", ["", "m5.xlarge", "ml.m5", "ML.M5.XLARGE"])
def test_instance_type_malformed_rejected(value):
    with pytest.raises(TemplateError, match="TrainingInstanceType"):
        Stack.from_template(ROOT / "template.yaml", {"TrainingInstanceType": value})


def test_range_parameter_exponent_accepted():
    stack = Stack.from_template(ROOT / "template.yaml", {"LearningRateMin": "2.5E-6"})

    assert stack.function_by_name("StartTuningFunction").environment["LEARNING_RATE_RANGE"] == "2.5E-6,1"


# Pattern operators, as EventBridge evaluates them


EVENT = {
    "source": "aws.s3",
    "detail": {"object": {"key": "runs/a/manifest.json", "size": 1200}, "tags": ["blue", "green"], "flag": False},
}


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ({"detail": {"object": {"key": [{"prefix": "runs/"}]}}}, True),
        ({"detail": {"object": {"key": [{"prefix": "data/"}]}}}, False),
        ({"detail": {"object": {"key": [{"suffix": "manifest.json"}]}}}, True),
        ({"detail": {"object": {"key": [{"suffix": ".pkl.gz"}]}}}, False),
        ({"source": [{"anything-but": ["aws.sagemaker"]}]}, True),
        ({"source": [{"anything-but": ["aws.s3"]}]}, False),
        ({"detail": {"object": {"key": [{"anything-but": {"prefix": "runs/"}}]}}}, False),
        ({"detail": {"object": {"size": [{"numeric": [">", 1000, "<=", 1200]}]}}}, True),
        ({"detail": {"object": {"size": [{"numeric": ["<", 1000]}]}}}, False),
        ({"detail": {"object": {"key": [{"exists": True}]}}}, True),
        ({"detail": {"object": {"version-id": [{"exists": False}]}}}, True),
        ({"detail": {"object": {"version-id": [{"exists": True}]}}}, False),
        ({"detail": {"tags": ["green"]}}, True),
        ({"detail": {"tags": ["red"]}}, False),
        ({"detail": {"flag": [False]}}, True),
        ({"source": ["aws.s3"], "detail": {"object": {"key": ["other"]}}}, False),
    ],
)
def test_pattern_operators(pattern, expected):
    assert matches(pattern, EVENT) is expected


# Creating resources in moto


def test_create_resources_in_moto(small_stack):
    with mock_aws():
        created = small_stack.create_resources()
        uploads = small_stack.physical("Uploads").name
        s3 = boto3.client("s3", region_name=REGION)

        assert set(created) >= {"Uploads", "Named", "Table", "Topic", "Failures", "WorkerUploaded"}
        assert s3.get_bucket_versioning(Bucket=uploads)["Status"] == "Enabled"
        assert s3_backends[ACCOUNT]["aws"].get_bucket(uploads).notification_configuration.event_bridge is not None
        key_schema = boto3.client("dynamodb", region_name=REGION).describe_table(
            TableName=small_stack.physical("Table").name
        )["Table"]["KeySchema"]
        assert key_schema == [{"AttributeName": "run_id", "KeyType": "HASH"}]
        rule = boto3.client("events", region_name=REGION).describe_rule(Name=small_stack.physical("WorkerUploaded").name)
        assert json.loads(rule["EventPattern"])["detail"]["bucket"]["name"] == [uploads]


def test_create_project_resources(project_stack):
    with mock_aws():
        created = project_stack.create_resources()

        assert {"IngestBucket", "ArtifactsBucket", "ResultsBucket", "LedgerTable", "RunsTopic", "DeadLetterQueue"} <= set(created)
        # One rule per function, plus the rule that keeps failed invocation records in the queue.
        assert len(boto3.client("events", region_name=REGION).list_rules()["Rules"]) == 6


# Loading handlers


def test_handler_sees_function_environment(small_stack, monkeypatch):
    # Given a host environment with a different TABLE value
    monkeypatch.setenv("TABLE", "host-table")
    worker = StackFunctions(small_stack)["Worker"]
    event = _s3_event(small_stack.physical("Uploads").name, "incoming/a.bin")

    # When the handler runs
    result = worker(event)

    # Then it read the template's environment at import and call time, and the host's is back
    assert result["table"] == small_stack.physical("Table").name
    assert result["prefix"] == "demo"
    assert result["function"] == small_stack.functions["Worker"].name
    assert 0 < result["remaining_ms"] <= 30_000
    assert result["key"] == "incoming/a.bin"
    assert os.environ["TABLE"] == "host-table"


def test_handlers_isolated_by_module(tmp_path):
    # Given two functions whose app.py imports a sibling module of the same name
    for name, value in (("one", 1), ("two", 2)):
        code = tmp_path / name
        code.mkdir()
        (code / "helper.py").write_text(f"VALUE = {value}\n")
        (code / "app.py").write_text("import helper\n\ndef lambda_handler(event, context):\n    return helper.VALUE\n")

    # When both are loaded in one process
    first = load_handler(tmp_path / "one")
    second = load_handler(tmp_path / "two")

    # Then each imports its own sibling module, and none stays in sys.modules
    assert first({}) == 1
    assert second({}) == 2
    assert "helper" not in sys.modules


# Delivery through the sandbox


FAILING_APP = '''
def lambda_handler(event, context):
    raise RuntimeError("cannot process " + event["detail"]["object"]["key"])
'''


def test_failing_handler_retried_then_dead_lettered(small_template):
    # Given the Worker function raising on every event (MaximumRetryAttempts 1, SQS on failure)
    (small_template.parent / "worker" / "app.py").write_text(FAILING_APP)

    with Sandbox(small_template) as sandbox:
        uploads = sandbox.stack.physical("Uploads").name
        queue = sandbox.stack.physical("Failures").ref

        # When an object lands under the rule's prefix and the sandbox runs until idle
        boto3.client("s3", region_name=REGION).put_object(Bucket=uploads, Key="incoming/a.bin", Body=b"x")
        boto3.client("s3", region_name=REGION).put_object(Bucket=uploads, Key="elsewhere/b.bin", Body=b"x")
        sandbox.run_until_idle()
        messages = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue, MaxNumberOfMessages=10)

    # Then the event was tried twice and its invocation record reached the destination queue
    assert sandbox.stats.events_delivered["Worker"] == 1
    assert sandbox.stats.invocations["Worker"] == 2
    assert sandbox.stats.dead_lettered["Worker"] == 1
    assert sandbox.stats.unmatched_events == 1
    assert len(messages["Messages"]) == 1
    record = json.loads(messages["Messages"][0]["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["requestPayload"]["detail"]["object"]["key"] == "incoming/a.bin"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


def test_deliver_twice_invokes_twice(small_template):
    with Sandbox(small_template, deliver_twice=True) as sandbox:
        uploads = sandbox.stack.physical("Uploads").name
        boto3.client("s3", region_name=REGION).put_object(Bucket=uploads, Key="incoming/a.bin", Body=b"x")
        sandbox.run_until_idle()

    assert sandbox.stats.events_delivered["Worker"] == 2
    assert sandbox.stats.failed_invocations["Worker"] == 0


def test_s3_event_carries_version(small_template):
    # Given a versioned, EventBridge-enabled bucket
    with Sandbox(small_template) as sandbox:
        uploads = sandbox.stack.physical("Uploads").name

        # When an object is written through boto3
        written = boto3.client("s3", region_name=REGION).put_object(Bucket=uploads, Key="incoming/a b.bin", Body=b"xyz")
        event = sandbox.bus.get()

    # Then the bus contains the Object Created event S3 sends, with the key not URL-encoded
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == "incoming/a b.bin"
    assert event["detail"]["object"]["size"] == 3
    assert event["detail"]["object"]["version-id"] == written["VersionId"]
    assert event["detail"]["object"]["etag"] == written["ETag"].strip('"')
    assert event["detail"]["reason"] == "PutObject"


def test_multipart_upload_one_event(small_template, tmp_path):
    # Given a file large enough for boto3 to upload it in parts
    large = tmp_path / "large.bin"
    large.write_bytes(b"x" * (9 * 1024 * 1024))

    with Sandbox(small_template) as sandbox:
        uploads = sandbox.stack.physical("Uploads").name
        boto3.client("s3", region_name=REGION).upload_file(str(large), uploads, "incoming/large.bin")
        first, second = sandbox.bus.get(), sandbox.bus.get()

    # Then S3 sends one Object Created event, for CompleteMultipartUpload
    assert first["detail"]["reason"] == "CompleteMultipartUpload"
    assert first["detail"]["object"]["size"] == 9 * 1024 * 1024
    assert second is None
