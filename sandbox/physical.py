"""Deterministic physical names, Ref values and Fn::GetAtt attributes of sandbox resources.

Generated names follow CloudFormation's shape, ``<stack>-<LogicalId>-<suffix>``, cut to the
service's maximum length. The suffix is a hash of the stack name and logical id instead of a
random string, so two sandbox runs of the same stack use the same names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sandbox.intrinsics import TemplateError

# Property that sets the physical name, and the maximum name length, per resource type.
_NAME_PROPERTIES: dict[str, tuple[str, int]] = {
    "AWS::S3::Bucket": ("BucketName", 63),
    "AWS::DynamoDB::Table": ("TableName", 255),
    "AWS::SNS::Topic": ("TopicName", 256),
    "AWS::SQS::Queue": ("QueueName", 80),
    "AWS::Lambda::Function": ("FunctionName", 64),
    "AWS::Lambda::LayerVersion": ("LayerName", 140),
    "AWS::IAM::Role": ("RoleName", 64),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", 128),
    "AWS::Events::Rule": ("Name", 64),
    "AWS::Events::EventBus": ("Name", 256),
    "AWS::Logs::LogGroup": ("LogGroupName", 512),
}
_DEFAULT_MAX_NAME_LENGTH = 128
_SUFFIX_LENGTH = 12


@dataclass(frozen=True)
class StackContext:
    """Name, account and region of the sandbox stack."""

    stack_name: str
    region: str
    account_id: str

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    @property
    def url_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"

    @property
    def stack_id(self) -> str:
        suffix = _digest(f"{self.account_id}/{self.region}/{self.stack_name}")
        return (
            f"arn:{self.partition}:cloudformation:{self.region}:{self.account_id}:"
            f"stack/{self.stack_name}/{suffix[:8]}-{suffix[8:12]}-{suffix[12:16]}-{suffix[16:20]}-{suffix[20:32]}"
        )

    def pseudo_parameters(self) -> dict[str, Any]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": self.url_suffix,
            "AWS::NotificationARNs": [],
        }


@dataclass(frozen=True)
class PhysicalResource:
    """A resource's physical name with the values Ref and Fn::GetAtt return for it."""

    logical_id: str
    resource_type: str
    name: str
    ref: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def get_att(self, attribute: str) -> Any:
        if attribute not in self.attributes:
            known = ", ".join(sorted(self.attributes)) or "none"
            raise TemplateError(
                f"Fn::GetAtt {self.logical_id}.{attribute} is not supported for {self.resource_type} "
                f"(supported attributes: {known})"
            )
        return self.attributes[attribute]


def name_property(resource_type: str) -> str | None:
    """Return the property that sets the physical name of ``resource_type``, if it has one."""
    entry = _NAME_PROPERTIES.get(resource_type)
    return entry[0] if entry else None


def generated_name(context: StackContext, logical_id: str, resource_type: str, properties: dict[str, Any]) -> str:
    """Return the name CloudFormation would generate, with a deterministic suffix."""
    max_length = _NAME_PROPERTIES.get(resource_type, ("", _DEFAULT_MAX_NAME_LENGTH))[1]
    suffix = _digest(f"{context.stack_name}/{logical_id}")[:_SUFFIX_LENGTH]
    is_fifo_queue = resource_type == "AWS::SQS::Queue" and str(properties.get("FifoQueue")).lower() == "true"
    ending = ".fifo" if is_fifo_queue else ""

    stem = f"{context.stack_name}-{logical_id}"
    stem = stem[: max_length - len(suffix) - len(ending) - 1]

    if resource_type == "AWS::S3::Bucket":
        return f"{stem}-{suffix}".lower()
    return f"{stem}-{suffix.upper()}{ending}"


def physical_resource(context: StackContext, logical_id: str, resource_type: str, name: str) -> PhysicalResource:
    """Return the Ref value and attributes of a resource named ``name``."""
    partition, region, account = context.partition, context.region, context.account_id
    arn_prefix = f"arn:{partition}"
    builders = {
        "AWS::S3::Bucket": lambda: (
            name,
            {
                "Arn": f"{arn_prefix}:s3:::{name}",
                "DomainName": f"{name}.s3.{context.url_suffix}",
                "RegionalDomainName": f"{name}.s3.{region}.{context.url_suffix}",
                "DualStackDomainName": f"{name}.s3.dualstack.{region}.{context.url_suffix}",
                "WebsiteURL": f"http://{name}.s3-website-{region}.{context.url_suffix}",
            },
        ),
        "AWS::DynamoDB::Table": lambda: (
            name,
            {
                "Arn": f"{arn_prefix}:dynamodb:{region}:{account}:table/{name}",
                "StreamArn": f"{arn_prefix}:dynamodb:{region}:{account}:table/{name}/stream/1970-01-01T00:00:00.000",
            },
        ),
        "AWS::SNS::Topic": lambda: (
            f"{arn_prefix}:sns:{region}:{account}:{name}",
            {"TopicArn": f"{arn_prefix}:sns:{region}:{account}:{name}", "TopicName": name},
        ),
        "AWS::SQS::Queue": lambda: (
            f"https://sqs.{region}.{context.url_suffix}/{account}/{name}",
            {
                "Arn": f"{arn_prefix}:sqs:{region}:{account}:{name}",
                "QueueName": name,
                "QueueUrl": f"https://sqs.{region}.{context.url_suffix}/{account}/{name}",
            },
        ),
        "AWS::Lambda::Function": lambda: (
            name,
            {"Arn": f"{arn_prefix}:lambda:{region}:{account}:function:{name}"},
        ),
        "AWS::Lambda::LayerVersion": lambda: (
            f"{arn_prefix}:lambda:{region}:{account}:layer:{name}:1",
            {"LayerVersionArn": f"{arn_prefix}:lambda:{region}:{account}:layer:{name}:1"},
        ),
        "AWS::Lambda::Version": lambda: (
            f"{arn_prefix}:lambda:{region}:{account}:function:{name}:1",
            {"Version": "1", "FunctionArn": f"{arn_prefix}:lambda:{region}:{account}:function:{name}"},
        ),
        "AWS::IAM::Role": lambda: (
            name,
            {
                "Arn": f"{arn_prefix}:iam::{account}:role/{name}",
                "RoleId": "AROA" + _digest(name)[:17].upper(),
            },
        ),
        "AWS::IAM::ManagedPolicy": lambda: (
            f"{arn_prefix}:iam::{account}:policy/{name}",
            {"PolicyArn": f"{arn_prefix}:iam::{account}:policy/{name}"},
        ),
        "AWS::Events::Rule": lambda: (
            name,
            {"Arn": f"{arn_prefix}:events:{region}:{account}:rule/{name}"},
        ),
        "AWS::Events::EventBus": lambda: (
            name,
            {"Arn": f"{arn_prefix}:events:{region}:{account}:event-bus/{name}", "Name": name},
        ),
        "AWS::Logs::LogGroup": lambda: (
            name,
            {"Arn": f"{arn_prefix}:logs:{region}:{account}:log-group:{name}:*"},
        ),
    }
    builder = builders.get(resource_type)
    if builder is None:
        service = resource_type.split("::")[1].lower() if resource_type.count("::") == 2 else "unknown"
        ref, attributes = name, {"Arn": f"{arn_prefix}:{service}:{region}:{account}:{name}"}
    else:
        ref, attributes = builder()
    return PhysicalResource(logical_id, resource_type, name, ref, attributes)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
