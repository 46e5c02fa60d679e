"""EventBridge event pattern matching, delegated to moto's implementation of the pattern rules.

moto's ``EventPattern`` supports exact values, prefix, suffix, anything-but (with lists and
nested prefix/suffix), numeric ranges, exists, equals-ignore-case, wildcard, cidr and ``$or``,
and matches an array value when any of its elements matches, as EventBridge does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moto.events.models import EventPattern


def compile_pattern(pattern: Mapping[str, Any] | str) -> EventPattern:
    """Parse and validate ``pattern``; moto raises InvalidEventPatternException when it is malformed."""
    raw = pattern if isinstance(pattern, str) else json.dumps(pattern)
    return EventPattern.load(raw)


def matches(pattern: Mapping[str, Any] | str | EventPattern, event: Mapping[str, Any]) -> bool:
    """Return whether ``event`` matches the EventBridge ``pattern``."""
    compiled = pattern if isinstance(pattern, EventPattern) else compile_pattern(pattern)
    return compiled.matches_event(dict(event))
