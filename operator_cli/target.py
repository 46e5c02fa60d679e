"""The stack ``llp`` works on: a deployed CloudFormation stack or the sandbox server, with its Outputs."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

SANDBOX_OUTPUTS_PATH = "/_sandbox/outputs"
# moto accepts any credentials. Fixed ones keep an operator's real keys out of the sandbox.
SANDBOX_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
EXIT_USAGE = 2


class CliError(Exception):
    """A problem the operator has to fix, printed as ``error: <message>`` with ``exit_status``."""

    def __init__(self, message: str, exit_status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_status = exit_status


@dataclass
class Target:
    """A stack's Outputs and the boto3 session and endpoint that reach its resources."""

    description: str
    session: boto3.Session
    outputs: dict[str, str]
    endpoint_url: str | None = None
    config: Config | None = None
    # The llp options that select this target, for the hints llp prints.
    options: str = ""

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url, config=self.config)

    def resource(self, service: str) -> Any:
        return self.session.resource(service, endpoint_url=self.endpoint_url, config=self.config)

    def output(self, name: str) -> str:
        """Return the stack output ``name``; raise CliError when the stack does not define it."""
        if name not in self.outputs:
            raise CliError(
                f"{self.description} has no output {name}: is it a Linear Learner Pipeline stack? "
                f"outputs found: {', '.join(sorted(self.outputs)) or 'none'}"
            )
        return self.outputs[name]


def connect(
    *,
    stack: str | None,
    endpoint_url: str | None,
    region: str | None = None,
    profile: str | None = None,
) -> Target:
    """Return the target selected by ``--stack`` or ``--endpoint-url``, with its Outputs read."""
    if stack and endpoint_url:
        raise CliError("pass either --stack NAME or --endpoint-url URL, not both")
    if endpoint_url:
        return connect_sandbox(endpoint_url)
    if stack:
        return connect_stack(stack, region=region, profile=profile)
    raise CliError(
        "no target: pass --stack NAME for a deployed stack or --endpoint-url URL for the sandbox server "
        "(or set LLP_STACK or LLP_ENDPOINT_URL)"
    )


def connect_stack(stack: str, *, region: str | None = None, profile: str | None = None) -> Target:
    """Read the Outputs of a deployed stack with CloudFormation DescribeStacks."""
    try:
        session = boto3.Session(profile_name=profile, region_name=region)
    except BotoCoreError as exc:
        raise CliError(f"cannot use AWS profile {profile!r}: {exc}") from exc
    if session.region_name is None:
        raise CliError("no AWS region configured: pass --region or set AWS_REGION")
    if session.get_credentials() is None:
        raise CliError(no_credentials_message())

    try:
        response = session.client("cloudformation").describe_stacks(StackName=stack)
    except NoCredentialsError as exc:
        raise CliError(no_credentials_message()) from exc
    except NoRegionError as exc:
        raise CliError("no AWS region configured: pass --region or set AWS_REGION") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            raise CliError(
                f"stack {stack} not found in region {session.region_name}: check --stack and --region"
            ) from exc
        raise

    description = response["Stacks"][0]
    outputs = {
        output["OutputKey"]: output["OutputValue"] for output in description.get("Outputs", [])
    }
    options = (
        f"--stack {stack}"
        + (f" --region {region}" if region else "")
        + (f" --profile {profile}" if profile else "")
    )
    return Target(f"stack {stack} ({session.region_name})", session, outputs, options=options)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Turn every redirect into an HTTPError instead of following it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def connect_sandbox(endpoint_url: str) -> Target:
    """Read the sandbox server's Outputs from ``GET <endpoint_url>/_sandbox/outputs``."""
    check_loopback_url(endpoint_url)
    url = endpoint_url.rstrip("/") + SANDBOX_OUTPUTS_PATH
    try:
        # No proxy and no redirects: the request stays on the loopback interface even when
        # HTTP_PROXY is set or the server returns a redirect to another host.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
        with opener.open(url, timeout=10) as response:
            description = json.load(response)
    except urllib.error.HTTPError as exc:
        raise CliError(
            f"{endpoint_url} is not a sandbox server: GET {SANDBOX_OUTPUTS_PATH} returned HTTP {exc.code}"
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(
            f"cannot reach the sandbox server at {endpoint_url} ({reason}): start it with python -m sandbox up"
        ) from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{url} did not return JSON: is {endpoint_url} a sandbox server?") from exc

    session = boto3.Session(
        region_name=description.get("region", "us-east-1"), **SANDBOX_CREDENTIALS
    )
    # An empty proxies mapping stops botocore from sending loopback requests to HTTP_PROXY.
    config = Config(proxies={})
    outputs = dict(description.get("outputs", {}))
    return Target(
        f"sandbox at {endpoint_url}",
        session,
        outputs,
        endpoint_url,
        config,
        f"--endpoint-url {endpoint_url}",
    )


def check_loopback_url(endpoint_url: str) -> None:
    """Raise CliError unless ``endpoint_url`` is an http URL on localhost or a loopback address."""
    parsed = urllib.parse.urlparse(endpoint_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise CliError(
            f"--endpoint-url {endpoint_url!r} is not a URL: pass e.g. http://127.0.0.1:5005"
        )
    if parsed.hostname == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(parsed.hostname).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise CliError(
            f"--endpoint-url {endpoint_url} is not a loopback address: the sandbox server listens on "
            "127.0.0.1; use --stack NAME for a deployed stack"
        )


def no_credentials_message() -> str:
    return (
        "no AWS credentials found: configure them with aws configure or aws sso login, "
        "or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    )
