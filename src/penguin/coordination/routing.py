"""Policy routing: ordered rules pick the agent for a message, each with a fallback chain.

A ``RouteRule`` matches on the message text (case-insensitive substrings and/or a regular
expression), on metadata and on request context (exact values). The first rule whose every
given condition holds wins; a rule with no condition matches everything (a catch-all). Its
``target`` (an agent id or ``role:<name>``) is asked first and its ``fallbacks`` in order when
the target fails, times out or is over budget. Rules are plain data, persisted with the
coordinator, so they survive a restart.

Patterns are user input, so they are compiled by RE2 (``penguin.security.patterns``), whose
matching time is linear in the text: no pattern can freeze the server. Linear still has a
constant, and an adversarial pattern can cost RE2 about a microsecond per character, so a
pattern sees only the first ``PATTERN_SCAN_CHARS`` of a message and ``aselect`` runs the match in
a worker thread (RE2 releases the GIL) whenever a rule has a pattern.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from penguin.errors import ValidationFailed
from penguin.naming import is_valid_agent_id
from penguin.security.patterns import UserPattern, compile_pattern

log = logging.getLogger("penguin.coordination")

#: Characters of a message that a rule's pattern is searched in (the first 64 KiB).
PATTERN_SCAN_CHARS = 65_536


def check_target(value: object, field_name: str = "target") -> str:
    """An agent id or ``role:<name>``.

    Raises:
        ValidationFailed: anything else.
    """
    if isinstance(value, str):
        name = value[5:] if value.startswith("role:") else value
        if is_valid_agent_id(name):
            return value
    raise ValidationFailed(f"{field_name} must be an agent id or 'role:<name>', got {str(value)[:80]!r}",
                           field=field_name)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRule:
    """One routing rule. Every condition given must hold."""

    #: A name for the rule, reported with each routed answer.
    name: str
    #: Agent id or ``role:<name>`` asked first.
    target: str
    #: Any of these substrings (case-insensitive) in the text.
    contains: tuple[str, ...] = ()
    #: A regular expression searched in the text.
    pattern: str | None = None
    #: Metadata keys that must have exactly these values.
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Request-context keys that must have exactly these values.
    context: Mapping[str, Any] = field(default_factory=dict)
    #: Targets asked in order when the previous one fails, times out or is over budget.
    fallbacks: tuple[str, ...] = ()
    _regex: UserPattern | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not 1 <= len(self.name) <= 100:
            raise ValidationFailed("rule name must be 1-100 characters", field="name")
        check_target(self.target)
        for fb in self.fallbacks:
            check_target(fb, "fallbacks")
        if self.pattern is not None:
            try:
                regex = compile_pattern(self.pattern, field="pattern")
            except ValidationFailed as exc:
                raise ValidationFailed(f"rule {self.name!r}: {exc.detail}", field="pattern") from None
            object.__setattr__(self, "_regex", regex)

    def matches(self, text: str, metadata: Mapping[str, Any], context: Mapping[str, Any]) -> bool:
        if self.contains:
            lowered = text.lower()
            if not any(s.lower() in lowered for s in self.contains):
                return False
        if self._regex is not None and not self._regex.search(text[:PATTERN_SCAN_CHARS]):
            return False
        if any(metadata.get(k, _MISSING) != v for k, v in self.metadata.items()):
            return False
        return not any(context.get(k, _MISSING) != v for k, v in self.context.items())

    @property
    def chain(self) -> tuple[str, ...]:
        return (self.target, *self.fallbacks)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "contains": list(self.contains),
            "pattern": self.pattern,
            "metadata": dict(self.metadata),
            "context": dict(self.context),
            "fallbacks": list(self.fallbacks),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteRule:
        """Build a rule from plain data.

        Raises:
            ValidationFailed: unknown or badly typed fields.
        """
        known = {"name", "target", "contains", "pattern", "metadata", "context", "fallbacks"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationFailed(f"unknown rule field(s) {unknown}; known: {sorted(known)}", field="rules")
        values = dict(data)
        for key in ("name", "target"):
            if not isinstance(values.get(key), str):
                raise ValidationFailed(f"every rule needs a string {key!r}", field=key)
        if values.get("pattern") is not None and not isinstance(values["pattern"], str):
            raise ValidationFailed("pattern must be a string (a regular expression)", field="pattern")
        for key in ("contains", "fallbacks"):
            raw = values.get(key, ())
            if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
                raise ValidationFailed(f"{key} must be a list of strings", field=key)
            values[key] = tuple(raw)
        for key in ("metadata", "context"):
            if not isinstance(values.get(key, {}), Mapping):
                raise ValidationFailed(f"{key} must be an object", field=key)
        return cls(**values)


_MISSING = object()


class Router:
    """Ordered rules plus a default chain for messages no rule matches."""

    def __init__(self, rules: Sequence[RouteRule] = (), *, default: Sequence[str] = ()) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValidationFailed("rule names must be unique", field="rules")
        self.rules = tuple(rules)
        self.default = tuple(check_target(t, "default") for t in default)
        self._has_patterns = any(rule.pattern is not None for rule in self.rules)

    def select(self, text: str, metadata: Mapping[str, Any] | None = None,
               context: Mapping[str, Any] | None = None) -> tuple[str | None, tuple[str, ...]]:
        """The matching rule's name and its target chain (or ``(None, default)``)."""
        meta = metadata or {}
        ctx = context or {}
        for rule in self.rules:
            if rule.matches(text, meta, ctx):
                return rule.name, rule.chain
        return None, self.default

    async def aselect(self, text: str, metadata: Mapping[str, Any] | None = None,
                      context: Mapping[str, Any] | None = None) -> tuple[str | None, tuple[str, ...]]:
        """``select``, in a worker thread when a rule has a pattern, so the event loop never waits on RE2."""
        if not self._has_patterns:
            return self.select(text, metadata, context)
        return await asyncio.to_thread(self.select, text, metadata, context)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "default": list(self.default)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Router:
        return cls([RouteRule.from_dict(r) for r in data.get("rules", [])], default=data.get("default", ()))

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> Router:
        """Rebuild persisted rules, dropping (and logging) any that no longer validate.

        Rules saved before patterns were RE2 may use lookaround or backreferences; refusing the
        whole router would stop the core from starting, so such a rule is left out until the
        routes are set again.
        """
        rules = []
        for raw in data.get("rules", []):
            try:
                rules.append(RouteRule.from_dict(raw))
            except ValidationFailed as exc:
                log.error("routing rule %r was dropped: %s; set the routes again", raw.get("name"), exc.detail)
        return cls(rules, default=data.get("default", ()))
