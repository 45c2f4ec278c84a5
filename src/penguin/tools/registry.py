"""``ToolRegistry``: the tools a core offers, and how one call runs.

The registry resolves which tools an agent sees (its ``ToolPolicy`` allow/deny globs and the shell
switch) and runs calls. Each call's failure is contained: it becomes an error result handed back
to the model, never an exception out of the turn.
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
    def __init__(self) -> None:
        self._tools: dict[str, Tool] = {}

    def register(self, tool: Tool | ToolFunction, *, name: str | None = None, description: str | None = None) -> Tool:
        built = tool if isinstance(tool, Tool) else tool_from_function(tool, name=name, description=description)
        self._tools[built.name] = built
        return built

    def register_all(self, tools: Iterable[Tool | ToolFunction]) -> None:
        for t in tools:
            self.register(t)

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def allowed(self, spec: AgentSpec, name: str) -> bool:
        policy = spec.tool_policy
        if name in SHELL_TOOLS and not policy.shell:
            return False
        if not any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.allow):
            return False
        return not any(fnmatch.fnmatchcase(name, pattern) for pattern in policy.deny)

    def schemas_for(self, spec: AgentSpec) -> list[ToolSchema]:
        return [t.schema for n, t in sorted(self._tools.items()) if self.allowed(spec, n)]

    async def call(self, spec: AgentSpec, ctx: ToolContext, call_id: str, name: str, arguments: str) -> ToolOutcome:
        """Run one call; every failure is captured in the outcome."""
        started = time.perf_counter()
        outcome = ToolOutcome(call_id=call_id, name=name, arguments=arguments, result="")
        try:
            tool = self._tools.get(name)
            if tool is None or not self.allowed(spec, name):
                if tool is None:
                    raise ToolError(f"unknown tool {name!r}; available: {', '.join(self.names()) or 'none'}")
                raise ToolDenied(f"tool {name!r} is not enabled for agent {spec.agent_id!r}")
            try:
                parsed = orjson.loads(arguments or "{}")
            except orjson.JSONDecodeError:
                raise ToolError(f"arguments for {name} are not valid JSON: {arguments[:200]!r}") from None
            if not isinstance(parsed, dict):
                raise ToolError(f"arguments for {name} must be a JSON object")
            outcome.result = result_text(await tool.invoke(ctx, parsed))
        except PenguinError as exc:
            outcome.error = exc.detail
            outcome.result = f"error: {exc.detail}"
        except Exception as exc:  # a tool's own bug fails that one call, not the turn
            outcome.error = f"{type(exc).__name__}: {exc}"
            outcome.result = f"error: {outcome.error}"
        outcome.duration_ms = (time.perf_counter() - started) * 1000
        return outcome
