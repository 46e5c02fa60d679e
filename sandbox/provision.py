"""Create a resolved stack's resources in moto, through boto3, from the template's own properties.

Created: S3 buckets (versioning, EventBridge notifications, encryption, ownership controls,
public access block, lifecycle rules, tags), DynamoDB tables (keys, billing, indexes, streams, TTL), SNS topics and
subscriptions, SQS queues (attributes and redrive policy), EventBridge buses, rules and targets.
IAM roles and policies, Lambda functions, layers and permissions are not created: moto does not
enforce IAM, and the sandbox runs the functions in-process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from sandbox.stack import Stack

logger = logging.getLogger(__name__)

# Creation order matters only where one resource names another: queues and topics come before
# subscriptions and rules, which may target them.
_CREATION_ORDER = (
    "AWS::SQS::Queue",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
)


def create_resources(stack: Stack) -> dict[str, str]:
    """Create every supported resource of ``stack`` in the active moto mock.

    Returns the physical name of each created resource by logical id. Call it inside
    ``moto.mock_aws()``: outside a mock, boto3 would reach real AWS.
    """
    session = boto3.session.Session(region_name=stack.context.region)
    creators: dict[str, Callable[[Stack, Any, str], None]] = {
        "AWS::SQS::Queue": _create_queue,
        "AWS::SNS::Topic": _create_topic,
        "AWS::SNS::Subscription": _create_subscription,
        "AWS::S3::Bucket": _create_bucket,
        "AWS::DynamoDB::Table": _create_table,
        "AWS::Events::EventBus": _create_event_bus,
        "AWS::Events::Rule": _create_rule,
    }

    created: dict[str, str] = {}
    for resource_type in _CREATION_ORDER:
        for logical_id in stack.resources_of_type(resource_type):
            creators[resource_type](stack, session, logical_id)
            created[logical_id] = stack.physical(logical_id).name
            logger.debug("created %s %s as %s", resource_type, logical_id, created[logical_id])
    return created


def _create_bucket(stack: Stack, session: Any, logical_id: str) -> None:
    s3 = session.client("s3")
    properties = stack.properties(logical_id)
    name = stack.physical(logical_id).name

    if stack.context.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": stack.context.region})

    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})

    notification = properties.get("NotificationConfiguration", {})
    if str(notification.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled", "false")).lower() == "true":
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )

    encryption_rules = properties.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration")
    if encryption_rules:
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={"Rules": [_encryption_rule(rule) for rule in encryption_rules]},
        )

    ownership = properties.get("OwnershipControls")
    if ownership:
        s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=ownership)

    public_access_block = properties.get("PublicAccessBlockConfiguration")
    if public_access_block:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={key: _as_bool(value) for key, value in public_access_block.items()},
        )

    lifecycle_rules = properties.get("LifecycleConfiguration", {}).get("Rules")
    if lifecycle_rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in lifecycle_rules]}
        )

    if properties.get("Tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": properties["Tags"]})


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """Convert a CloudFormation encryption rule to the PutBucketEncryption shape."""
    converted: dict[str, Any] = {"ApplyServerSideEncryptionByDefault": rule.get("ServerSideEncryptionByDefault", {})}
    if "BucketKeyEnabled" in rule:
        converted["BucketKeyEnabled"] = _as_bool(rule["BucketKeyEnabled"])
    return converted


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """Convert a CloudFormation lifecycle rule to the PutBucketLifecycleConfiguration shape."""
    converted: dict[str, Any] = {"ID": rule.get("Id", "rule"), "Status": rule.get("Status", "Enabled")}
    converted["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(noncurrent["NoncurrentDays"])}
    elif "NoncurrentVersionExpirationInDays" in rule:
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(rule["NoncurrentVersionExpirationInDays"])}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
    return converted


def _create_table(stack: Stack, session: Any, logical_id: str) -> None:
    dynamodb = session.client("dynamodb")
    properties = stack.properties(logical_id)
    name = stack.physical(logical_id).name

    request: dict[str, Any] = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(properties.get("ProvisionedThroughput"))
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if properties.get(index_kind):
            request[index_kind] = [_index(index, request["BillingMode"]) for index in properties[index_kind]]
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    if properties.get("Tags"):
        request["Tags"] = properties["Tags"]
    dynamodb.create_table(**request)

    time_to_live = properties.get("TimeToLiveSpecification")
    if time_to_live and _as_bool(time_to_live.get("Enabled", False)):
        dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": time_to_live["AttributeName"], "Enabled": True},
        )


def _throughput(throughput: dict[str, Any] | None) -> dict[str, int]:
    throughput = throughput or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    return {key: int(value) for key, value in throughput.items()}


def _index(index: dict[str, Any], billing_mode: str) -> dict[str, Any]:
    converted = dict(index)
    if billing_mode == "PROVISIONED" and "ProvisionedThroughput" in converted:
        converted["ProvisionedThroughput"] = _throughput(converted["ProvisionedThroughput"])
    return converted


def _create_topic(stack: Stack, session: Any, logical_id: str) -> None:
    sns = session.client("sns")
    properties = stack.properties(logical_id)
    attributes = {
        key: _attribute_value(properties[key])
        for key in ("DisplayName", "FifoTopic", "ContentBasedDeduplication", "KmsMasterKeyId")
        if key in properties
    }
    request: dict[str, Any] = {"Name": stack.physical(logical_id).name, "Attributes": attributes}
    if properties.get("Tags"):
        request["Tags"] = properties["Tags"]
    topic_arn = sns.create_topic(**request)["TopicArn"]

    for subscription in properties.get("Subscription", []):
        sns.subscribe(TopicArn=topic_arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])


def _create_subscription(stack: Stack, session: Any, logical_id: str) -> None:
    properties = stack.properties(logical_id)
    session.client("sns").subscribe(
        TopicArn=properties["TopicArn"], Protocol=properties["Protocol"], Endpoint=properties["Endpoint"]
    )


_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def _create_queue(stack: Stack, session: Any, logical_id: str) -> None:
    properties = stack.properties(logical_id)
    attributes = {key: _attribute_value(properties[key]) for key in _QUEUE_ATTRIBUTES if key in properties}
    request: dict[str, Any] = {"QueueName": stack.physical(logical_id).name, "Attributes": attributes}
    if properties.get("Tags"):
        request["tags"] = {tag["Key"]: tag["Value"] for tag in properties["Tags"]}
    session.client("sqs").create_queue(**request)


def _create_event_bus(stack: Stack, session: Any, logical_id: str) -> None:
    session.client("events").create_event_bus(Name=stack.physical(logical_id).name)


def _create_rule(stack: Stack, session: Any, logical_id: str) -> None:
    events = session.client("events")
    properties = stack.properties(logical_id)
    rule = stack.rules.get(logical_id)
    if rule is None:
        return

    request: dict[str, Any] = {
        "Name": rule.name,
        "EventPattern": json.dumps(rule.pattern),
        "State": "ENABLED" if rule.enabled else "DISABLED",
        "EventBusName": rule.event_bus_name,
    }
    if rule.description:
        request["Description"] = rule.description
    events.put_rule(**request)

    targets = [_rule_target(target) for target in properties.get("Targets", [])]
    if targets:
        events.put_targets(Rule=rule.name, EventBusName=rule.event_bus_name, Targets=targets)


def _rule_target(target: dict[str, Any]) -> dict[str, Any]:
    converted = {key: target[key] for key in ("Id", "Arn", "Input", "InputPath") if key in target}
    if "RetryPolicy" in target:
        converted["RetryPolicy"] = {key: int(value) for key, value in target["RetryPolicy"].items()}
    if "DeadLetterConfig" in target:
        converted["DeadLetterConfig"] = target["DeadLetterConfig"]
    return converted


def _attribute_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _as_bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"
