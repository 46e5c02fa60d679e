"""CloudFormation intrinsic functions, resolved against sandbox parameters and physical ids.

The resolver covers what a SAM template expanded by the SAM translator uses: Ref, Fn::GetAtt,
Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If, Fn::FindInMap, Fn::Base64, Fn::GetAZs,
Fn::ToJsonString, Fn::Length and the condition functions (Fn::Equals, Fn::Not, Fn::And, Fn::Or,
Condition). Fn::ImportValue and Fn::Cidr raise TemplateError, because a sandbox stack has no
exports and no VPC.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

NO_VALUE = object()
"""Marker left by ``Ref: AWS::NoValue``; containers drop it, as CloudFormation does."""

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(ValueError):
    """The template uses a construct the sandbox cannot resolve, or refers to something missing."""


RefResolver = Callable[[str], Any]
GetAttResolver = Callable[[str, str], Any]


class IntrinsicResolver:
    """Resolve intrinsic functions in template fragments.

    ``ref`` maps a logical id or parameter name (pseudo parameters included) to its value and
    ``get_att`` maps (logical id, attribute) to a value. Conditions are evaluated lazily from the
    template's Conditions section and cached.
    """

    def __init__(
        self,
        *,
        ref: RefResolver,
        get_att: GetAttResolver,
        mappings: Mapping[str, Any],
        conditions: Mapping[str, Any],
        region: str,
    ) -> None:
        self._ref = ref
        self._get_att = get_att
        self._mappings = mappings
        self._condition_definitions = conditions
        self._condition_values: dict[str, bool] = {}
        self._conditions_in_progress: set[str] = set()
        self._region = region

    def resolve(self, node: Any) -> Any:
        """Return ``node`` with every intrinsic function replaced by its value."""
        if isinstance(node, Mapping):
            if len(node) == 1:
                (key, argument), = node.items()
                if key == "Ref":
                    return self._ref(self._resolve_string(argument, "Ref"))
                if key == "Condition" and isinstance(argument, str):
                    return self.condition(argument)
                if key.startswith("Fn::"):
                    return self._resolve_function(key, argument)
            resolved_mapping = {key: self.resolve(value) for key, value in node.items()}
            return {key: value for key, value in resolved_mapping.items() if value is not NO_VALUE}

        if isinstance(node, list):
            resolved_items = [self.resolve(item) for item in node]
            return [item for item in resolved_items if item is not NO_VALUE]

        return node

    def condition(self, name: str) -> bool:
        """Evaluate the template condition ``name``."""
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self._condition_definitions:
            raise TemplateError(f"condition {name!r} is not defined in the template's Conditions")
        if name in self._conditions_in_progress:
            raise TemplateError(f"condition {name!r} refers to itself")

        self._conditions_in_progress.add(name)
        try:
            value = self._evaluate_condition(self._condition_definitions[name])
        finally:
            self._conditions_in_progress.discard(name)

        self._condition_values[name] = value
        return value

    def _evaluate_condition(self, node: Any) -> bool:
        value = self.resolve(node)
        if not isinstance(value, bool):
            raise TemplateError(f"a condition must evaluate to true or false, got {value!r}")
        return value

    def _resolve_string(self, node: Any, function: str) -> str:
        value = self.resolve(node)
        if not isinstance(value, str):
            raise TemplateError(f"{function} expects a string, got {value!r}")
        return value

    def _resolve_function(self, key: str, argument: Any) -> Any:
        handlers: dict[str, Callable[[Any], Any]] = {
            "Fn::GetAtt": self._get_att_function,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": self._base64,
            "Fn::GetAZs": self._get_azs,
            "Fn::ToJsonString": self._to_json_string,
            "Fn::Length": self._length,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
            "Fn::And": self._and,
            "Fn::Or": self._or,
        }
        handler = handlers.get(key)
        if handler is None:
            raise TemplateError(f"intrinsic function {key} is not supported by the sandbox")
        return handler(argument)

    def _get_att_function(self, argument: Any) -> Any:
        if isinstance(argument, str):
            logical_id, _, attribute = argument.partition(".")
        elif isinstance(argument, list) and len(argument) == 2:
            logical_id = self._resolve_string(argument[0], "Fn::GetAtt")
            attribute = self._resolve_string(argument[1], "Fn::GetAtt")
        else:
            raise TemplateError(f"Fn::GetAtt expects [LogicalId, Attribute], got {argument!r}")
        if not logical_id or not attribute:
            raise TemplateError(f"Fn::GetAtt expects LogicalId.Attribute, got {argument!r}")
        return self._get_att(logical_id, attribute)

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, str):
            template, variables = argument, {}
        elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], Mapping):
            template = argument[0]
            variables = {name: self.resolve(value) for name, value in argument[1].items()}
        else:
            raise TemplateError(f"Fn::Sub expects a string or [string, variables], got {argument!r}")
        if not isinstance(template, str):
            raise TemplateError(f"Fn::Sub expects a string template, got {template!r}")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and not name.startswith("AWS::"):
                logical_id, _, attribute = name.partition(".")
                value = self._get_att(logical_id, attribute)
            else:
                value = self._ref(name)
            if isinstance(value, bool):
                return "true" if value else "false"
            if not isinstance(value, str | int | float):
                raise TemplateError(f"Fn::Sub variable ${{{name}}} resolved to {value!r}, not a string")
            return str(value)

        return _SUB_VARIABLE.sub(substitute, template)

    def _join(self, argument: Any) -> str:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateError(f"Fn::Join expects [delimiter, list], got {argument!r}")
        delimiter = self._resolve_string(argument[0], "Fn::Join")
        items = self.resolve(argument[1])
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Join expects a list of values, got {items!r}")
        return delimiter.join(str(item) for item in items)

    def _select(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateError(f"Fn::Select expects [index, list], got {argument!r}")
        index = int(self.resolve(argument[0]))
        items = self.resolve(argument[1])
        if not isinstance(items, list) or not 0 <= index < len(items):
            raise TemplateError(f"Fn::Select index {index} is out of range for {items!r}")
        return items[index]

    def _split(self, argument: Any) -> list[str]:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateError(f"Fn::Split expects [delimiter, string], got {argument!r}")
        delimiter = self._resolve_string(argument[0], "Fn::Split")
        return self._resolve_string(argument[1], "Fn::Split").split(delimiter)

    def _if(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise TemplateError(f"Fn::If expects [condition, true value, false value], got {argument!r}")
        condition_name = self._resolve_string(argument[0], "Fn::If")
        chosen = argument[1] if self.condition(condition_name) else argument[2]
        return self.resolve(chosen)

    def _find_in_map(self, argument: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) in (3, 4)):
            raise TemplateError(f"Fn::FindInMap expects [map, top key, second key], got {argument!r}")
        map_name, top_key, second_key = (self._resolve_string(part, "Fn::FindInMap") for part in argument[:3])
        try:
            return self.resolve(self._mappings[map_name][top_key][second_key])
        except KeyError:
            if len(argument) == 4 and isinstance(argument[3], Mapping) and "DefaultValue" in argument[3]:
                return self.resolve(argument[3]["DefaultValue"])
            raise TemplateError(
                f"Fn::FindInMap found no value at {map_name}/{top_key}/{second_key}: "
                "add the key to Mappings or pass another parameter value"
            ) from None

    def _base64(self, argument: Any) -> str:
        text = self._resolve_string(argument, "Fn::Base64")
        return base64.b64encode(text.encode()).decode()

    def _get_azs(self, argument: Any) -> list[str]:
        region = self.resolve(argument) or self._region
        return [f"{region}{zone}" for zone in "abc"]

    def _to_json_string(self, argument: Any) -> str:
        return json.dumps(self.resolve(argument), separators=(",", ":"))

    def _length(self, argument: Any) -> int:
        items = self.resolve(argument)
        if not isinstance(items, list):
            raise TemplateError(f"Fn::Length expects a list, got {items!r}")
        return len(items)

    def _equals(self, argument: Any) -> bool:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise TemplateError(f"Fn::Equals expects two values, got {argument!r}")
        left, right = (self.resolve(value) for value in argument)
        return _comparable(left) == _comparable(right)

    def _not(self, argument: Any) -> bool:
        if not (isinstance(argument, list) and len(argument) == 1):
            raise TemplateError(f"Fn::Not expects one condition, got {argument!r}")
        return not self._evaluate_condition(argument[0])

    def _and(self, argument: Any) -> bool:
        if not (isinstance(argument, list) and 2 <= len(argument) <= 10):
            raise TemplateError(f"Fn::And expects 2 to 10 conditions, got {argument!r}")
        return all(self._evaluate_condition(item) for item in argument)

    def _or(self, argument: Any) -> bool:
        if not (isinstance(argument, list) and 2 <= len(argument) <= 10):
            raise TemplateError(f"Fn::Or expects 2 to 10 conditions, got {argument!r}")
        return any(self._evaluate_condition(item) for item in argument)


def _comparable(value: Any) -> Any:
    """Compare values as CloudFormation does: parameters are strings, so 0 equals "0"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
