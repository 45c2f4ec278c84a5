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


def result_text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    else:
        text = orjson.dumps(value, default=str).decode()
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[truncated {len(text) - MAX_RESULT_CHARS} characters]"
    return text


class ToolRegistry:
    def __init__(self, *, policy: ToolPolicyEnforcer | None = None) -> None:
        self._tools: dict[str, Tool] = {}
        #: Tools only one agent sees: agent_id -> name -> tool.
        self._agent_tools: dict[str, dict[str, Tool]] = {}
        self.policy = policy if policy is not None else ToolPolicyEnforcer()

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
        return built

    def register_all(self, tools: Iterable[Tool | ToolFunction]) -> None:
        for t in tools:
            self.register(t)

    def unregister(self, name: str, *, agent_id: str | None = None) -> None:
        if agent_id is None:
            self._tools.pop(name, None)
        else:
            self._agent_tools.get(agent_id, {}).pop(name, None)

    def drop_agent(self, agent_id: str) -> None:
        """Forget every tool registered for one agent (the agent was removed)."""
        self._agent_tools.pop(agent_id, None)

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
        policy = spec.tool_policy
        if name in SHELL_TOOLS and not policy.shell:
            return False
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.allow):
            return False
        return not any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.deny)

    def schemas_for(self, spec: AgentSpec) -> list[ToolSchema]:
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
            call = ToolCallInfo(spec=spec, ctx=ctx, tool=name, arguments=arguments)
            outcome.result = result_text(await self.policy.run(call, lambda: tool.invoke(ctx, parsed)))
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
