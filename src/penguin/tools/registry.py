"""``ToolRegistry``: the tools a core offers, and how one call runs.

The registry resolves which tools an agent sees (its ``ToolPolicy`` allow/deny globs and the shell
switch) and runs calls. Each call's failure is contained: it becomes an error result handed back
to the model, never an exception out of the turn. Tools are global or registered for one agent
only (``agent_id=``, e.g. a per-agent MCP server); an agent's own tool shadows a global one of the
same name. Every call runs inside the ``ToolPolicyEnforcer`` (rate limits, quotas, approvals,
concurrency, timeout), which wraps the call rather than adding branches here.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable
from typing import Any

import orjson

from penguin.agents.spec import AgentSpec
from penguin.errors import PenguinError, ToolDenied, ToolError
from penguin.models.base import ToolSchema
from penguin.tools.base import Tool, ToolContext, ToolFunction, ToolOutcome, tool_from_function
from penguin.tools.policy import ToolCallInfo, ToolPolicyEnforcer

MAX_RESULT_CHARS = 64_000
SHELL_TOOLS = frozenset({"run_shell"})
#: Distinct (agent, policy) views remembered before the memo starts over (specs are replaced, not
#: edited, so old views pile up otherwise).
_MEMO_LIMIT = 1024


def result_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        text = orjson.dumps(value, default=str).decode()
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[truncated {len(text) - MAX_RESULT_CHARS} characters]"
    return text


def _allowed(allow: Iterable[str], deny: Iterable[str], shell: bool, name: str) -> bool:
    if name in SHELL_TOOLS and not shell:
        return False
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in allow):
        return False
    return not any(fnmatch.fnmatchcase(name, pattern) for pattern in deny)


class ToolRegistry:
    def __init__(self, *, policy: ToolPolicyEnforcer | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        #: Tools only one agent sees: agent_id -> name -> tool.
        self._agent_tools: dict[str, dict[str, Tool]] = {}
        self.policy = policy if policy is not None else ToolPolicyEnforcer()
        # ``schemas_for`` and ``allowed`` run on every turn and tool call, and glob matching is
        # their whole cost. Both depend only on a policy's (allow, deny, shell) values, plus the
        # registered tools for ``schemas_for``; keying on those values means a changed policy can
        # never hit an old entry, and ``_changed`` drops the schemas whenever the tools change.
        self._allowed_memo: dict[tuple[tuple[str, ...], tuple[str, ...], bool, str], bool] = {}
        self._schemas_memo: dict[tuple[str, tuple[str, ...], tuple[str, ...], bool], tuple[ToolSchema, ...]] = {}
        #: Bumped on every change of tools, so a list computed across a change is not remembered.
        self._version = 0

    def register(
        self,
        tool: Tool | ToolFunction,
        *,
        name: str | None = None,
        description: str | None = None,
        agent_id: str | None = None,
    ) -> Tool:
        """Add a tool for every agent, or only for ``agent_id``."""
        built = tool if isinstance(tool, Tool) else tool_from_function(tool, name=name, description=description)
        if agent_id is None:
            self._tools[built.name] = built
        else:
            self._agent_tools.setdefault(agent_id, {})[built.name] = built
        self._changed()
        return built

    def register_all(self, tools: Iterable[Tool | ToolFunction]) -> None:
        for t in tools:
            self.register(t)

    def unregister(self, name: str, *, agent_id: str | None = None) -> None:
        if agent_id is None:
            self._tools.pop(name, None)
        else:
            self._agent_tools.get(agent_id, {}).pop(name, None)
        self._changed()

    def drop_agent(self, agent_id: str) -> None:
        """Forget every tool registered for one agent (the agent was removed)."""
        self._agent_tools.pop(agent_id, None)
        self._changed()

    def _changed(self) -> None:
        """The set of tools changed: every remembered schema list may be wrong now."""
        self._version += 1
        self._schemas_memo.clear()

    def get(self, name: str, *, agent_id: str | None = None) -> Tool | None:
        """The tool ``name`` as ``agent_id`` sees it (its own first, then the global one)."""
        own = self._agent_tools.get(agent_id, {}) if agent_id is not None else {}
        return own.get(name) or self._tools.get(name)

    def names(self, *, agent_id: str | None = None) -> list[str]:
        return sorted(self._visible(agent_id))

    def _visible(self, agent_id: str | None) -> dict[str, Tool]:
        if agent_id is None or agent_id not in self._agent_tools:
            return self._tools
        return {**self._tools, **self._agent_tools[agent_id]}

    def allowed(self, spec: AgentSpec, name: str) -> bool:
        """Whether ``spec``'s tool policy lets it call ``name`` (memoised per policy values)."""
        policy = spec.tool_policy
        try:
            key = (policy.allow, policy.deny, policy.shell, name)
            return self._allowed_memo[key]
        except KeyError:
            pass
        except TypeError:  # a policy built with lists instead of tuples: unhashable, not memoised
            return _allowed(policy.allow, policy.deny, policy.shell, name)
        if len(self._allowed_memo) >= _MEMO_LIMIT:
            self._allowed_memo.clear()
        verdict = self._allowed_memo[key] = _allowed(policy.allow, policy.deny, policy.shell, name)
        return verdict

    def schemas_for(self, spec: AgentSpec) -> list[ToolSchema]:
        """The schemas of the tools ``spec`` may call, by name (memoised until the tools change)."""
        policy = spec.tool_policy
        try:
            key = (spec.agent_id, policy.allow, policy.deny, policy.shell)
            return list(self._schemas_memo[key])
        except KeyError:
            pass
        except TypeError:
            return self._schemas(spec)
        version = self._version
        schemas = self._schemas(spec)
        if version == self._version:
            if len(self._schemas_memo) >= _MEMO_LIMIT:
                self._schemas_memo.clear()
            self._schemas_memo[key] = tuple(schemas)
        return schemas

    def _schemas(self, spec: AgentSpec) -> list[ToolSchema]:
        return [t.schema for n, t in sorted(self._visible(spec.agent_id).items()) if self.allowed(spec, n)]

    async def call(self, spec: AgentSpec, ctx: ToolContext, call_id: str, name: str, arguments: str) -> ToolOutcome:
        """Run one call; every failure is captured in the outcome."""
        started = time.perf_counter()
        outcome = ToolOutcome(call_id=call_id, name=name, arguments=arguments, result="")
        try:
            tool = self.get(name, agent_id=spec.agent_id)
            if tool is None or not self.allowed(spec, name):
                if tool is None:
                    available = ", ".join(n for n in self.names(agent_id=spec.agent_id) if self.allowed(spec, n))
                    raise ToolError(f"unknown tool {name!r}; available: {available or 'none'}")
                self.policy.count_denial(spec.agent_id, name, "not_enabled")
                raise ToolDenied(f"tool {name!r} is not enabled for agent {spec.agent_id!r}", reason="not_enabled")
            try:
                parsed = orjson.loads(arguments or "{}")
            except orjson.JSONDecodeError:
                raise ToolError(f"arguments for {name} are not valid JSON: {arguments[:200]!r}") from None
            if not isinstance(parsed, dict):
                raise ToolError(f"arguments for {name} must be a JSON object")
            # Checked before the guards: a call the schema refuses never ran, so it takes no rate,
            # quota or approval, and is counted as an error of that tool.
            try:
                kwargs = tool.validate(parsed)
            except ToolError:
                self.policy.count_error(spec.agent_id, name)
                raise
            call = ToolCallInfo(spec=spec, ctx=ctx, tool=name, arguments=arguments)
            outcome.result = result_text(await self.policy.run(call, lambda: tool.call_validated(ctx, kwargs)))
        except ToolDenied as exc:
            outcome.denied = str(exc.extra.get("reason", "denied"))
            outcome.error = exc.detail
            outcome.result = f"error: {exc.detail}"
        except PenguinError as exc:
            outcome.error = exc.detail
            outcome.result = f"error: {exc.detail}"
        except Exception as exc:  # a tool's own bug fails that one call, not the turn
            outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.result = f"error: {outcome.error}"
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        return outcome
