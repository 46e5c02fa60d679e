"""Record the AWS calls each principal makes and check them against the template's IAM policies.

``CallRecorder`` hooks every botocore client created while it is installed. It maps each request
to the IAM actions and resource ARNs that AWS authorizes it with, and attributes them to the
principal (a function or role logical id) acting at that moment. ``PolicySet`` reads a role's
policies from the stack expanded by the SAM translator and evaluates Allow and Deny statements
with IAM wildcard matching and the condition operators this template uses.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import botocore.session
from botocore.awsrequest import AWSResponse

from sandbox.stack import Stack
from sandbox.template import read_template

# ---- calls -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IamCall:
    """One authorization AWS performs for a request: an action on a resource, with condition keys."""

    principal: str
    operation: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    @property
    def condition_keys(self) -> dict[str, str]:
        return dict(self.context)

    def __str__(self) -> str:
        keys = "".join(f" {name}={value}" for name, value in self.context)
        return f"{self.action} on {self.resource}{keys} ({self.operation})"


# SageMaker resource types by the noun in an operation name. SageMaker lowercases names in ARNs.
SAGEMAKER_RESOURCE_TYPES = {
    "HyperParameterTuningJob": "hyper-parameter-tuning-job",
    "TrainingJob": "training-job",
    "Model": "model",
    "EndpointConfig": "endpoint-config",
    "Endpoint": "endpoint",
}
SAGEMAKER_VERBS = ("Create", "Describe", "Delete", "Update", "Stop", "Invoke", "ListTags", "AddTags")

# S3 operations whose IAM action differs from "s3:<Operation>".
S3_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
}
# Reading a given version needs s3:GetObjectVersion instead of s3:GetObject (S3 API reference, GetObject).
S3_VERSIONED_READS = {"GetObject", "HeadObject"}
OBJECT_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


def iam_calls(principal: str, service: str, operation: str, params: Mapping[str, Any], *, region: str,
              account_id: str) -> list[IamCall]:
    """Map one API request to the IAM authorizations it needs, implied ones included."""
    if service == "s3":
        return [_s3_call(principal, operation, params)]
    if service == "dynamodb":
        resource = f"arn:aws:dynamodb:{region}:{account_id}:table/{params.get('TableName', '*')}"
        return [IamCall(principal, operation, f"dynamodb:{operation}", resource)]
    if service == "sns":
        return [IamCall(principal, operation, f"sns:{operation}", params.get("TopicArn", "*"))]
    if service in ("sagemaker", "sagemaker-runtime"):
        return _sagemaker_calls(principal, operation, params, region=region, account_id=account_id)
    if service == "sqs" and "QueueUrl" in params:
        # A queue URL ends in /<account id>/<queue name>.
        owner, name = params["QueueUrl"].rstrip("/").split("/")[-2:]
        return [IamCall(principal, operation, f"sqs:{operation}", f"arn:aws:sqs:{region}:{owner}:{name}")]
    return [IamCall(principal, operation, f"{service}:{operation}", "*")]


def _s3_call(principal: str, operation: str, params: Mapping[str, Any]) -> IamCall:
    bucket = params.get("Bucket", "*")
    if operation in ("ListObjects", "ListObjectsV2"):
        context = (("s3:prefix", params.get("Prefix", "")),)
        return IamCall(principal, operation, "s3:ListBucket", f"arn:aws:s3:::{bucket}", context)

    action = S3_ACTIONS.get(operation, f"s3:{operation}")
    if operation in S3_VERSIONED_READS and params.get("VersionId"):
        action = "s3:GetObjectVersion"
    return IamCall(principal, operation, action, f"arn:aws:s3:::{bucket}/{params.get('Key', '*')}")


def _sagemaker_calls(principal: str, operation: str, params: Mapping[str, Any], *, region: str,
                     account_id: str) -> list[IamCall]:
    resource = _sagemaker_resource(operation, params, region=region, account_id=account_id)
    calls = [IamCall(principal, operation, f"sagemaker:{operation}", resource)]
    if operation.startswith("Create") and params.get("Tags"):
        calls.append(IamCall(principal, operation, "sagemaker:AddTags", resource))
    for role_arn in sorted(_role_arns(params)):
        context = (("iam:PassedToService", "sagemaker.amazonaws.com"),)
        calls.append(IamCall(principal, operation, "iam:PassRole", role_arn, context))
    return calls


def _sagemaker_resource(operation: str, params: Mapping[str, Any], *, region: str, account_id: str) -> str:
    if operation == "ListTrainingJobsForHyperParameterTuningJob":
        noun = "HyperParameterTuningJob"
    else:
        verb = next((verb for verb in SAGEMAKER_VERBS if operation.startswith(verb)), "")
        noun = operation[len(verb):]
    name = params.get(f"{noun}Name")
    if noun not in SAGEMAKER_RESOURCE_TYPES or not isinstance(name, str):
        return "*"
    return f"arn:aws:sagemaker:{region}:{account_id}:{SAGEMAKER_RESOURCE_TYPES[noun]}/{name.lower()}"


def _role_arns(value: Any) -> set[str]:
    """Find RoleArn and ExecutionRoleArn anywhere in a request: passing a role needs iam:PassRole."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("RoleArn", "ExecutionRoleArn") and isinstance(item, str):
                found.add(item)
            else:
                found |= _role_arns(item)
    elif isinstance(value, list | tuple):
        for item in value:
            found |= _role_arns(item)
    return found


# ---- recorder ----------------------------------------------------------------------------------


@dataclass
class Fault:
    """An error response returned instead of calling AWS, for the next ``times`` matching requests."""

    principal: str
    operation: str
    code: str
    status: int = 500
    times: int = 1


@dataclass
class CallRecorder:
    """Record the IAM authorizations of every botocore request, per acting principal.

    Requests made while no principal acts (test setup, moto provisioning) are not recorded.
    The principal is process-wide, not per thread, because handlers upload and predict on
    worker threads; so only one principal may act at a time.
    """

    account_id: str
    calls: list[IamCall] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    principal: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def installed(self) -> Iterator[CallRecorder]:
        """Hook every client created inside the block (create clients only after entering it)."""
        original = botocore.session.Session.create_client
        recorder = self

        def create_client(session: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            recorder._attach(client)
            return client

        with mock.patch.object(botocore.session.Session, "create_client", create_client):
            yield self

    @contextmanager
    def acting_as(self, principal: str) -> Iterator[None]:
        previous, self.principal = self.principal, principal
        try:
            yield
        finally:
            self.principal = previous

    def by(self, principal: str) -> list[IamCall]:
        return [call for call in self.calls if call.principal == principal]

    def _attach(self, client: Any) -> None:
        service = client.meta.service_model.service_name
        region = client.meta.region_name
        events = client.meta.events

        def record(params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            if self.principal is None:
                return
            context["iam_recorder_principal"] = self.principal
            calls = iam_calls(self.principal, service, model.name, params, region=region, account_id=self.account_id)
            with self._lock:
                self.calls.extend(calls)
            context["iam_recorder_params"] = dict(params)

        def inject(model: Any, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
            fault = self._take_fault(context.get("iam_recorder_principal"), model.name)
            if fault is None:
                return None
            response = AWSResponse("https://fault.invalid/", fault.status, {}, None)
            parsed = {"Error": {"Code": fault.code, "Message": f"injected {fault.code} for {model.name}"},
                      "ResponseMetadata": {"HTTPStatusCode": fault.status, "HTTPHeaders": {}}}
            return response, parsed

        def record_not_found(parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            # S3 returns 404 for a missing object only to callers allowed s3:ListBucket on the
            # bucket. Others get 403 AccessDenied (S3 API reference, HeadObject and GetObject).
            principal = context.get("iam_recorder_principal")
            code = str(parsed.get("Error", {}).get("Code", ""))
            if service != "s3" or principal is None or model.name not in S3_VERSIONED_READS:
                return
            if code in OBJECT_NOT_FOUND_CODES:
                bucket = context.get("iam_recorder_params", {}).get("Bucket", "*")
                with self._lock:
                    self.calls.append(IamCall(principal, f"{model.name} (not found)", "s3:ListBucket",
                                              f"arn:aws:s3:::{bucket}"))

        events.register("before-parameter-build.*.*", record)
        events.register("before-call.*.*", inject)
        events.register("after-call.*.*", record_not_found)

    def _take_fault(self, principal: str | None, operation: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.principal == principal and fault.operation == operation and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None


# ---- policies ----------------------------------------------------------------------------------

# Statements of the AWS managed policies SAM attaches, from the AWS managed policy reference
# (AWSXrayWriteOnlyAccess v2). An attachment not listed here makes PolicySet raise, so a new one
# gets reviewed.
MANAGED_POLICIES: dict[str, tuple[dict[str, Any], ...]] = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": (
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "*"},
    ),
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": (
        {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                                       "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"],
         "Resource": "*"},
    ),
}


@dataclass(frozen=True)
class Statement:
    policy: str
    sid: str
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]
    from_template: bool

    @property
    def label(self) -> str:
        return f"{self.policy}/{self.sid or '(no Sid)'}"

    def matches(self, call: IamCall) -> bool:
        return (any(_wildcard(pattern, call.action, ignore_case=True) for pattern in self.actions)
                and any(_wildcard(pattern, call.resource) for pattern in self.resources)
                and all(_condition_holds(operator, keys, call.condition_keys)
                        for operator, keys in self.conditions.items()))


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(item) for item in (value if isinstance(value, list) else [value]))


def _wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Match an IAM pattern, where * is any run of characters (slashes included) and ? one character."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    expression = "".join(parts)
    return re.fullmatch(expression, value, re.IGNORECASE if ignore_case else 0) is not None


def _condition_holds(operator: str, keys: Mapping[str, tuple[str, ...]], context: Mapping[str, str]) -> bool:
    """Evaluate one condition operator. A key missing from the request context fails it, as in IAM."""
    if operator not in ("StringEquals", "StringLike"):
        raise NotImplementedError(f"condition operator {operator} is not evaluated: extend tests/iam.py")
    for key, expected in keys.items():
        actual = context.get(key)
        if actual is None:
            return False
        if operator == "StringEquals" and actual not in expected:
            return False
        if operator == "StringLike" and not any(_wildcard(pattern, actual) for pattern in expected):
            return False
    return True


def _statements(policy: str, document: Mapping[str, Any], *, from_template: bool) -> list[Statement]:
    statements = []
    for raw in document.get("Statement", []):
        unsupported = {"NotAction", "NotResource", "NotPrincipal"} & set(raw)
        if unsupported:
            raise NotImplementedError(f"{policy}: {sorted(unsupported)} is not evaluated: extend tests/iam.py")
        conditions = {operator: {key: _as_tuple(values) for key, values in keys.items()}
                      for operator, keys in raw.get("Condition", {}).items()}
        statements.append(Statement(policy=policy, sid=raw.get("Sid", ""), effect=raw["Effect"],
                                    actions=_as_tuple(raw["Action"]), resources=_as_tuple(raw["Resource"]),
                                    conditions=conditions, from_template=from_template))
    return statements


@dataclass(frozen=True)
class PolicySet:
    """All statements of one role: template policies, SAM-added policies and managed policies."""

    role: str
    statements: tuple[Statement, ...]

    @classmethod
    def for_role(cls, stack: Stack, role_logical_id: str) -> PolicySet:
        """Read a role after SAM translation. Policies named <Role>Policy<N> come from the template's Policies."""
        properties = stack.properties(role_logical_id)
        generated_by_sam = role_logical_id not in read_template(stack.template_path).get("Resources", {})
        statements: list[Statement] = []
        for policy in properties.get("Policies", []):
            name = policy["PolicyName"]
            from_template = not generated_by_sam or re.fullmatch(rf"{role_logical_id}Policy\d+", name) is not None
            statements += _statements(name, policy["PolicyDocument"], from_template=from_template)
        for arn in properties.get("ManagedPolicyArns", []):
            if arn not in MANAGED_POLICIES:
                raise KeyError(f"{role_logical_id} attaches managed policy {arn}, which tests/iam.py does not know: "
                               "add its statements to MANAGED_POLICIES after reviewing it")
            statements += _statements(arn.rsplit("/", 1)[-1], {"Statement": MANAGED_POLICIES[arn]}, from_template=False)
        return cls(role_logical_id, tuple(statements))

    @classmethod
    def for_function(cls, stack: Stack, function_logical_id: str) -> PolicySet:
        role_arn = stack.properties(function_logical_id)["Role"]
        for logical_id in stack.resources_of_type("AWS::IAM::Role"):
            if stack.physical(logical_id).get_att("Arn") == role_arn:
                return cls.for_role(stack, logical_id)
        raise KeyError(f"{function_logical_id} uses role {role_arn}, which is not a role of the stack")

    @property
    def template_statements(self) -> list[Statement]:
        return [statement for statement in self.statements if statement.from_template]

    @property
    def known_statements(self) -> list[Statement]:
        """Statements SAM adds or AWS manages: allowed, but not required to be used."""
        return [statement for statement in self.statements if not statement.from_template]

    def allows(self, call: IamCall) -> bool:
        matching = [statement for statement in self.statements if statement.matches(call)]
        return any(s.effect == "Allow" for s in matching) and not any(s.effect == "Deny" for s in matching)

    def missing(self, calls: Iterable[IamCall]) -> list[str]:
        """Describe each distinct call that no statement allows."""
        return sorted({str(call) for call in calls if not self.allows(call)})

    def unused(self, calls: Iterable[IamCall]) -> list[str]:
        """Describe each template Allow action and resource pattern that no call used through its statement."""
        calls = list(calls)
        findings = []
        for statement in self.template_statements:
            if statement.effect != "Allow":
                continue
            used = [call for call in calls if statement.matches(call)]
            for action in statement.actions:
                if not any(_wildcard(action, call.action, ignore_case=True) for call in used):
                    findings.append(f"{statement.label}: action {action}")
            for resource in statement.resources:
                if not any(_wildcard(resource, call.resource) for call in used):
                    findings.append(f"{statement.label}: resource {resource}")
        return findings
