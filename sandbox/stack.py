"""A CloudFormation/SAM stack resolved for the sandbox: parameters, physical ids, functions, rules.

``Stack.from_template`` expands the SAM template with the SAM translator, applies parameter
overrides, evaluates conditions and resolves intrinsics with deterministic physical names.
``create_resources`` then creates the buckets, tables, topics, queues and EventBridge rules in
moto, and ``functions_for`` matches an event against the template's own rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.events.models import EventPattern

from sandbox.intrinsics import NO_VALUE, IntrinsicResolver, TemplateError
from sandbox.patterns import compile_pattern
from sandbox.provision import create_resources
from sandbox.physical import PhysicalResource, StackContext, generated_name, name_property, physical_resource
from sandbox.template import code_key, expand_template, read_template

DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_EVENT_BUS = "default"

# Lambda defaults when the template does not set them.
_DEFAULT_TIMEOUT_SECONDS = 3
_DEFAULT_MEMORY_MB = 128
_DEFAULT_ASYNC_RETRY_ATTEMPTS = 2


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function as the template defines it after resolution and the Globals merge."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]
    dead_letter_target_arn: str | None = None
    maximum_retry_attempts: int = _DEFAULT_ASYNC_RETRY_ATTEMPTS
    on_failure_destination_arn: str | None = None


@dataclass(frozen=True)
class TargetSpec:
    """One target of a rule. ``function`` is None for targets other than this stack's functions."""

    target_id: str
    arn: str
    function: FunctionSpec | None
    input: str | None = None
    input_path: str | None = None


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule with its resolved pattern and targets."""

    logical_id: str
    name: str
    arn: str
    event_bus_name: str
    pattern: dict[str, Any]
    enabled: bool
    targets: tuple[TargetSpec, ...]
    description: str | None = None
    compiled_pattern: EventPattern = field(repr=False, compare=False, default=None)  # type: ignore[assignment]

    def matches(self, event: Mapping[str, Any]) -> bool:
        return self.enabled and self.compiled_pattern.matches_event(dict(event))


class Stack:
    """The resolved stack. Build it with ``Stack.from_template``."""

    def __init__(
        self,
        *,
        template_path: Path,
        cloudformation: dict[str, Any],
        code_dirs: dict[str, Path],
        parameters: dict[str, Any],
        context: StackContext,
    ) -> None:
        self.template_path = template_path
        self.context = context
        self.parameters = parameters
        self.cloudformation = cloudformation
        self._code_dirs = code_dirs

        self._resolver = IntrinsicResolver(
            ref=self._ref,
            get_att=self._get_att,
            mappings=cloudformation.get("Mappings", {}),
            conditions=cloudformation.get("Conditions", {}),
            region=context.region,
        )
        self._physical: dict[str, PhysicalResource] = {}
        self._naming_in_progress: set[str] = set()

        self.resources: dict[str, dict[str, Any]] = {
            logical_id: resource
            for logical_id, resource in cloudformation.get("Resources", {}).items()
            if "Condition" not in resource or self._resolver.condition(resource["Condition"])
        }
        self.functions: dict[str, FunctionSpec] = self._function_specs()
        self.rules: dict[str, RuleSpec] = self._rule_specs()

    @classmethod
    def from_template(
        cls,
        path: str | Path,
        parameters: Mapping[str, Any] | None = None,
        stack_name: str = "sandbox",
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
    ) -> Stack:
        """Load ``path`` and resolve it with ``parameters`` overriding the template's defaults."""
        template_path = Path(path).resolve()
        context = StackContext(stack_name=stack_name, region=region, account_id=account_id)
        document = read_template(template_path)
        parameter_values = _parameter_values(document.get("Parameters", {}), parameters or {})

        expanded = expand_template(
            document,
            base_dir=template_path.parent,
            parameter_values={**context.pseudo_parameters(), **parameter_values},
            region=region,
        )
        return cls(
            template_path=template_path,
            cloudformation=expanded.cloudformation,
            code_dirs=expanded.code_dirs,
            parameters=parameter_values,
            context=context,
        )

    # Resolution

    def resolve(self, node: Any) -> Any:
        """Resolve the intrinsic functions in a template fragment."""
        return self._resolver.resolve(node)

    def condition(self, name: str) -> bool:
        return self._resolver.condition(name)

    def properties(self, logical_id: str) -> dict[str, Any]:
        """Return the resolved Properties of a resource."""
        return self.resolve(self._resource(logical_id).get("Properties", {}))

    def physical(self, logical_id: str) -> PhysicalResource:
        """Return the physical name, Ref value and attributes of a resource."""
        if logical_id in self._physical:
            return self._physical[logical_id]
        if logical_id in self._naming_in_progress:
            raise TemplateError(f"the name of {logical_id} depends on itself")

        resource = self._resource(logical_id)
        resource_type = resource.get("Type", "")
        self._naming_in_progress.add(logical_id)
        try:
            name = self._physical_name(logical_id, resource_type, resource.get("Properties", {}))
        finally:
            self._naming_in_progress.discard(logical_id)

        physical = physical_resource(self.context, logical_id, resource_type, name)
        self._physical[logical_id] = physical
        return physical

    def physical_ids(self) -> dict[str, str]:
        """Return the physical name of every resource, by logical id."""
        return {logical_id: self.physical(logical_id).name for logical_id in self.resources}

    def resources_of_type(self, resource_type: str) -> list[str]:
        return [logical_id for logical_id, resource in self.resources.items() if resource.get("Type") == resource_type]

    def create_resources(self) -> dict[str, str]:
        """Create the stack's buckets, tables, topics, queues and rules in the active moto mock.

        Returns the physical name of each created resource by logical id.
        """
        return create_resources(self)

    def outputs(self) -> dict[str, Any]:
        """Return the template's Outputs, resolved, skipping those whose condition is false."""
        outputs = {}
        for name, output in self.cloudformation.get("Outputs", {}).items():
            if "Condition" in output and not self.condition(output["Condition"]):
                continue
            outputs[name] = self.resolve(output.get("Value"))
        return outputs

    # Events

    def functions_for(self, event: Mapping[str, Any], event_bus_name: str = DEFAULT_EVENT_BUS) -> list[FunctionSpec]:
        """Return the functions that receive ``event``, once per matching rule target."""
        return [target.function for target in self.targets_for(event, event_bus_name) if target.function]

    def targets_for(self, event: Mapping[str, Any], event_bus_name: str = DEFAULT_EVENT_BUS) -> list[TargetSpec]:
        """Return every target of every enabled rule on ``event_bus_name`` that matches ``event``."""
        targets: list[TargetSpec] = []
        for rule in self.rules.values():
            if rule.event_bus_name == event_bus_name and rule.matches(event):
                targets.extend(rule.targets)
        return targets

    def function_by_name(self, name: str) -> FunctionSpec:
        for function in self.functions.values():
            if function.name == name or function.logical_id == name:
                return function
        raise KeyError(f"no function named {name!r} in the stack")

    # Internals

    def _resource(self, logical_id: str) -> dict[str, Any]:
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(
                f"{logical_id!r} is neither a parameter nor a resource of the stack "
                "(or its condition is false)"
            ) from None

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        pseudo = self.context.pseudo_parameters()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical(name).ref

    def _get_att(self, logical_id: str, attribute: str) -> Any:
        return self.physical(logical_id).get_att(attribute)

    def _physical_name(self, logical_id: str, resource_type: str, raw_properties: dict[str, Any]) -> str:
        property_name = name_property(resource_type)
        if property_name and property_name in raw_properties:
            value = self.resolve(raw_properties[property_name])
            if not isinstance(value, str) or not value:
                raise TemplateError(f"{logical_id}.{property_name} resolved to {value!r}, not a name")
            return value
        return generated_name(self.context, logical_id, resource_type, raw_properties)

    def _function_specs(self) -> dict[str, FunctionSpec]:
        layer_dirs_by_arn = {
            self.physical(logical_id).ref: self._code_dirs[code_key(self.properties(logical_id).get("Content"))]
            for logical_id in self.resources_of_type("AWS::Lambda::LayerVersion")
            if code_key(self.properties(logical_id).get("Content")) in self._code_dirs
        }
        invoke_configs = self._event_invoke_configs()

        specs = {}
        for logical_id in self.resources_of_type("AWS::Lambda::Function"):
            properties = self.properties(logical_id)
            code_logical_id = code_key(properties.get("Code"))
            if code_logical_id not in self._code_dirs:
                # NOTE: inline and S3-hosted code cannot run in the sandbox, so such functions
                # are left out and events for them are not delivered.
                continue

            physical = self.physical(logical_id)
            variables = properties.get("Environment", {}).get("Variables", {})
            invoke_config = invoke_configs.get(physical.name, {})
            on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {})

            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=physical.name,
                arn=physical.get_att("Arn"),
                code_dir=self._code_dirs[code_logical_id],
                handler=properties.get("Handler", "app.lambda_handler"),
                runtime=properties.get("Runtime", ""),
                timeout_seconds=int(properties.get("Timeout", _DEFAULT_TIMEOUT_SECONDS)),
                memory_mb=int(properties.get("MemorySize", _DEFAULT_MEMORY_MB)),
                environment={name: _environment_value(value) for name, value in variables.items()},
                layer_dirs=tuple(layer_dirs_by_arn[arn] for arn in properties.get("Layers", []) if arn in layer_dirs_by_arn),
                dead_letter_target_arn=properties.get("DeadLetterConfig", {}).get("TargetArn"),
                maximum_retry_attempts=int(invoke_config.get("MaximumRetryAttempts", _DEFAULT_ASYNC_RETRY_ATTEMPTS)),
                on_failure_destination_arn=on_failure.get("Destination"),
            )
        return specs

    def _event_invoke_configs(self) -> dict[str, dict[str, Any]]:
        configs = {}
        for logical_id in self.resources_of_type("AWS::Lambda::EventInvokeConfig"):
            properties = self.properties(logical_id)
            configs[str(properties.get("FunctionName", ""))] = properties
        return configs

    def _rule_specs(self) -> dict[str, RuleSpec]:
        functions_by_arn = {function.arn: function for function in self.functions.values()}
        rules = {}
        for logical_id in self.resources_of_type("AWS::Events::Rule"):
            properties = self.properties(logical_id)
            pattern = properties.get("EventPattern")
            if pattern is None:
                # NOTE: scheduled rules (ScheduleExpression) never fire in the sandbox.
                continue
            if isinstance(pattern, str):
                pattern = json.loads(pattern)

            targets = tuple(_target_spec(target, functions_by_arn) for target in properties.get("Targets", []))
            physical = self.physical(logical_id)
            rules[logical_id] = RuleSpec(
                logical_id=logical_id,
                name=physical.name,
                arn=physical.get_att("Arn"),
                event_bus_name=_event_bus_name(properties.get("EventBusName", DEFAULT_EVENT_BUS)),
                pattern=pattern,
                enabled=properties.get("State", "ENABLED") == "ENABLED",
                targets=targets,
                description=properties.get("Description"),
                compiled_pattern=compile_pattern(pattern),
            )
        return rules


def _parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"unknown template parameter(s) {', '.join(unknown)}: declared are {', '.join(sorted(declared))}")

    values: dict[str, Any] = {}
    for name, declaration in declared.items():
        if name in overrides:
            raw = overrides[name]
        elif "Default" in declaration:
            raw = declaration["Default"]
        else:
            raise TemplateError(f"parameter {name} has no Default: pass a value for it")

        value = _parameter_value(name, declaration, raw)
        allowed = declaration.get("AllowedValues")
        if allowed is not None and value not in [_environment_value(item) for item in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of its AllowedValues {allowed}")
        pattern = declaration.get("AllowedPattern")
        # CloudFormation matches AllowedPattern against the whole value of a String parameter.
        if pattern is not None and isinstance(value, str) and re.fullmatch(pattern, value) is None:
            raise TemplateError(f"parameter {name}={value!r} does not match its AllowedPattern {pattern}")
        values[name] = value
    return values


def _parameter_value(name: str, declaration: Mapping[str, Any], raw: Any) -> Any:
    parameter_type = declaration.get("Type", "String")
    if parameter_type == "CommaDelimitedList" or parameter_type.startswith("List<"):
        items = raw if isinstance(raw, list) else str(raw).split(",")
        return [_environment_value(item).strip() for item in items]

    value = _environment_value(raw)
    if parameter_type == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name} is a Number, got {value!r}") from None
        # CloudFormation rejects a Number outside MinValue..MaxValue when the stack is created.
        if "MinValue" in declaration and number < float(declaration["MinValue"]):
            raise TemplateError(f"parameter {name}={value} is below its MinValue {declaration['MinValue']}")
        if "MaxValue" in declaration and number > float(declaration["MaxValue"]):
            raise TemplateError(f"parameter {name}={value} is above its MaxValue {declaration['MaxValue']}")
    return value


def _environment_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _event_bus_name(value: str) -> str:
    # EventBusName accepts a name or an ARN (arn:aws:events:region:account:event-bus/name).
    return value.rsplit("event-bus/", 1)[-1]


def _target_spec(target: Mapping[str, Any], functions_by_arn: Mapping[str, FunctionSpec]) -> TargetSpec:
    arn = str(target.get("Arn", ""))
    if "InputTransformer" in target:
        raise TemplateError(f"rule target {target.get('Id')} uses InputTransformer, which the sandbox does not support")

    # A target may name a version or alias (function:name:qualifier); the code is the same.
    unqualified_arn = ":".join(arn.split(":")[:7])
    return TargetSpec(
        target_id=str(target.get("Id", "")),
        arn=arn,
        function=functions_by_arn.get(unqualified_arn),
        input=target.get("Input"),
        input_path=target.get("InputPath"),
    )
