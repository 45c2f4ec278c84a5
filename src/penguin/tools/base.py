"""Tool definitions: a name, a description, a JSON schema derived from type hints, and a function.

A tool function may be sync or async. Its first parameter may be a ``ToolContext`` (detected by
annotation), which carries the calling agent and conversation; every other parameter becomes a
property of the argument schema and is validated with pydantic before the call.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints

import pydantic

from penguin.agents.spec import ToolPolicy
from penguin.errors import ToolError
from penguin.models.base import ToolSchema


@dataclass(slots=True, kw_only=True)
class ToolContext:
    """What a tool knows about the call it serves."""

    agent_id: str
    conversation_id: str
    turn_id: str
    task_id: str | None = None
    #: The ``PenguinCore`` (typed ``Any`` to keep tools free of an import cycle).
    core: Any = None
    #: The calling agent's tool policy as the turn began (e.g. ``shell_network`` for ``run_shell``).
    policy: ToolPolicy = field(default_factory=ToolPolicy)
    #: Per-call extras (e.g. the workspace root) set by the engine.
    extras: dict[str, Any] = field(default_factory=dict)


ToolFunction = Callable[..., Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    name: str
    description: str
    parameters: Mapping[str, Any]
    function: ToolFunction
    takes_context: bool
    #: Checks the arguments before the call; None passes them through as given (the tool checks
    #: them itself, e.g. a remote MCP server against its own schema).
    validator: type[pydantic.BaseModel] | None
    #: Tools that block (file I/O, subprocesses) run in a worker thread.
    blocking: bool = False

    @property
    def schema(self) -> ToolSchema:
        return ToolSchema(name=self.name, description=self.description, parameters=self.parameters)

    async def invoke(self, ctx: ToolContext, arguments: Mapping[str, Any]) -> Any:
        """Validate arguments and call the function.

        Raises:
            ToolError: invalid arguments.
        """
        if self.validator is None:
            kwargs = dict(arguments)
        else:
            try:
                parsed = self.validator.model_validate(dict(arguments))
            except pydantic.ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
                )
                raise ToolError(f"invalid arguments for {self.name}: {problems}") from None
            kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        args = (ctx,) if self.takes_context else ()
        if self.blocking:
            import asyncio

            result = await asyncio.to_thread(self.function, *args, **kwargs)
        else:
            result = self.function(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


def tool_from_function(
    function: ToolFunction,
    *,
    name: str | None = None,
    description: str | None = None,
    blocking: bool | None = None,
) -> Tool:
    """Build a ``Tool`` from a function's signature, type hints and docstring."""
    tool_name = name or function.__name__
    hints = get_type_hints(function)
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    takes_context = bool(params) and hints.get(params[0].name) is ToolContext
    if takes_context:
        params = params[1:]
    fields: dict[str, Any] = {}
    for p in params:
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (annotation, default)
    validator = pydantic.create_model(
        f"{tool_name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )
    schema = validator.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    doc = inspect.getdoc(function) or ""
    return Tool(
        name=tool_name,
        description=description or doc.split("\n\n")[0] or tool_name,
        parameters=schema,
        function=function,
        takes_context=takes_context,
        validator=validator,
        blocking=(not inspect.iscoroutinefunction(function)) if blocking is None else blocking,
    )


@dataclass(slots=True, kw_only=True)
class ToolOutcome:
    """What one tool call did, as recorded in the conversation and the ``ChatResult``."""

    call_id: str
    name: str
    arguments: str
    result: str
    error: str | None = None
    #: Why policy refused the call (``rate_limit``, ``quota``, ``approval_denied``, ``sandbox``, ...);
    #: None when the call was not refused.
    denied: str | None = None
    started_at: float = field(default_factory=time.time)
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "result": self.result,
            "error": self.error,
            "denied": self.denied,
            "duration_ms": round(self.duration_ms, 3),
        }


ToolRunner = Callable[[ToolContext, str, str, str], Awaitable[ToolOutcome]]
