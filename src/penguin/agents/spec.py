"""``AgentSpec``: everything that defines one persona, as plain persisted data."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from penguin._suggest import did_you_mean
from penguin.errors import ValidationFailed
from penguin.naming import DEFAULT_TENANT, validate_agent_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolPolicy:
    """Which tools an agent may call and how often. Enforced by ``penguin.tools.policy``."""

    #: Glob patterns of tool names the agent may use (``*`` = every registered tool).
    allow: tuple[str, ...] = ("*",)
    #: Glob patterns that are refused even when allowed.
    deny: tuple[str, ...] = ()
    #: ``run_shell`` is off unless this is true.
    shell: bool = False
    #: ``run_shell`` commands may reach the network (off: a network namespace with only its own loopback).
    shell_network: bool = False
    #: Tool calls per minute for the agent as a whole (None = unlimited).
    rate_per_minute: int | None = None
    #: Calls per minute per tool name (glob → limit).
    tool_rate_per_minute: Mapping[str, int] = field(default_factory=dict)
    #: Concurrent tool calls at most (None = unlimited).
    max_concurrent: int | None = None
    #: Calls per task at most, for the whole agent (None = unlimited).
    task_quota: int | None = None
    #: Per-tool calls per task (glob → limit).
    tool_task_quota: Mapping[str, int] = field(default_factory=dict)
    #: Tools (globs) whose calls wait for an approve/deny decision.
    require_approval: tuple[str, ...] = ()
    #: Seconds to wait for an approval; no answer means denied.
    approval_timeout: float = 300.0
    #: Seconds one tool call may run.
    timeout: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["allow"] = list(self.allow)
        out["deny"] = list(self.deny)
        out["require_approval"] = list(self.require_approval)
        out["tool_rate_per_minute"] = dict(self.tool_rate_per_minute)
        out["tool_task_quota"] = dict(self.tool_task_quota)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ToolPolicy:
        if not data:
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationFailed(
                f"unknown tool policy field(s) {unknown}{did_you_mean(unknown[0], known)} (known: {sorted(known)})",
                field="tool_policy",
            )
        values = dict(data)
        for key in ("allow", "deny", "require_approval"):
            if key in values:
                values[key] = _str_tuple(values[key], f"tool_policy.{key}")
        for key in ("tool_rate_per_minute", "tool_task_quota"):
            if key in values:
                values[key] = _int_map(values[key], f"tool_policy.{key}")
        for key in ("rate_per_minute", "max_concurrent", "task_quota"):
            if values.get(key) is not None:
                values[key] = _positive_int(values[key], f"tool_policy.{key}")
        for key in ("approval_timeout", "timeout"):
            if key in values:
                v = values[key]
                if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                    raise ValidationFailed(f"{key} must be a positive number", field=f"tool_policy.{key}")
                values[key] = float(v)
        for key in ("shell", "shell_network"):
            if key in values and not isinstance(values[key], bool):
                raise ValidationFailed(f"{key} must be true or false", field=f"tool_policy.{key}")
        return cls(**values)


def _str_tuple(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed(f"{name} must be a list of strings", field=name)
    return tuple(value)


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationFailed(f"{name} must be a non-negative integer", field=name)
    return value


def _int_map(value: Any, name: str) -> dict[str, int]:
    if not isinstance(value, Mapping):
        raise ValidationFailed(f"{name} must be an object of name → integer", field=name)
    return {str(k): _positive_int(v, name) for k, v in value.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    """One persona: identity, prompt, model and policy. Immutable; updates make a new spec."""

    #: The agent id (``^[A-Za-z0-9_-]{1,64}$``).
    agent_id: str
    #: The persona: system prompt placed first in every context.
    system_prompt: str = ""
    #: Roles this agent can fill (``planner``, ``qa``, ...), used by the coordinator.
    roles: tuple[str, ...] = ()
    #: ``provider:model``; None means the core's default model.
    model: str | None = None
    #: Provider parameters passed with every call (temperature, max_tokens, ...).
    model_parameters: Mapping[str, Any] = field(default_factory=dict)
    #: Context budget in tokens for this agent (None = the core default).
    context_tokens: int | None = None
    tool_policy: ToolPolicy = field(default_factory=ToolPolicy)
    #: The agent that spawned this one, for sub-agents.
    parent_id: str | None = None
    #: A paused agent accepts messages but runs no turn until resumed.
    paused: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tenant_id: str = DEFAULT_TENANT
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        validate_agent_id(self.agent_id)
        if self.parent_id is not None:
            validate_agent_id(self.parent_id, field="parent_id")

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "system_prompt": self.system_prompt,
            "roles": list(self.roles),
            "model": self.model,
            "model_parameters": dict(self.model_parameters),
            "context_tokens": self.context_tokens,
            "tool_policy": self.tool_policy.to_dict(),
            "parent_id": self.parent_id,
            "paused": self.paused,
            "metadata": dict(self.metadata),
            "tenant_id": self.tenant_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentSpec:
        values = dict(data)
        values["roles"] = tuple(values.get("roles") or ())
        values["tool_policy"] = ToolPolicy.from_dict(values.get("tool_policy"))
        values["model_parameters"] = dict(values.get("model_parameters") or {})
        values["metadata"] = dict(values.get("metadata") or {})
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def updated(self, **changes: Any) -> AgentSpec:
        return dataclasses.replace(self, **changes, updated_at=time.time())


#: Fields a caller may set on create/update, with a check for each.
EDITABLE_FIELDS = (
    "system_prompt",
    "roles",
    "model",
    "model_parameters",
    "context_tokens",
    "tool_policy",
    "parent_id",
    "paused",
    "metadata",
)


def check_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise caller-supplied spec fields (types, ranges, unknown names).

    Raises:
        ValidationFailed: naming the first bad field.
    """
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in EDITABLE_FIELDS:
            raise ValidationFailed(
                f"unknown agent field {key!r}{did_you_mean(key, EDITABLE_FIELDS)} (editable: {list(EDITABLE_FIELDS)})",
                field=key,
            )
        if key == "system_prompt":
            if not isinstance(value, str) or len(value) > 100_000:
                raise ValidationFailed("system_prompt must be a string of at most 100000 chars", field=key)
        elif key == "roles":
            roles = _str_tuple(value, "roles")
            for role in roles:
                validate_agent_id(role, field="roles")
            value = roles
        elif key == "model":
            if value is not None and not isinstance(value, str):
                raise ValidationFailed("model must be a 'provider:model' string or null", field=key)
        elif key in ("model_parameters", "metadata"):
            if not isinstance(value, Mapping):
                raise ValidationFailed(f"{key} must be an object", field=key)
            value = dict(value)
        elif key == "context_tokens":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 256):
                raise ValidationFailed("context_tokens must be an integer >= 256 or null", field=key)
        elif key == "tool_policy":
            if isinstance(value, ToolPolicy):
                pass
            elif value is None or isinstance(value, Mapping):
                value = ToolPolicy.from_dict(value)
            else:
                raise ValidationFailed("tool_policy must be an object", field=key)
        elif key == "parent_id":
            if value is not None:
                validate_agent_id(value, field="parent_id")
        elif key == "paused" and not isinstance(value, bool):
            raise ValidationFailed("paused must be true or false", field=key)
        out[key] = value
    return out
