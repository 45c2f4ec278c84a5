"""Tool definitions: a name, a description, a JSON schema derived from type hints, and a function.

A tool function may be sync or async. Its first parameter may be a ``ToolContext`` (detected by
annotation), which carries the calling agent and conversation; every other parameter becomes a
property of the argument schema and is validated with pydantic before the call.

The schema keeps everything the signature says: ``Annotated[int, Field(ge=1, le=10,
description=...)]`` constraints and descriptions, the ``Args:`` lines of a Google docstring as
parameter descriptions (an ``Annotated`` description wins), enums and ``Literal`` choices (inlined,
without ``$ref``, since several model APIs reject references in tool schemas), and defaults. The
model sees the same rules the validator enforces, so a call it makes from the schema is accepted.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, get_args, get_origin, get_type_hints

import orjson
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

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments of the call, checked against the schema.

        Raises:
            ToolError: an argument breaks the schema (``reason="invalid_arguments"``); the message
                names each bad argument and the rule, so the model can correct its call.
        """
        if self.validator is None:
            return dict(arguments)
        try:
            parsed = self.validator.model_validate(dict(arguments))
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in exc.errors()
            )
            raise ToolError(f"invalid arguments for {self.name}: {problems}", reason="invalid_arguments") from None
        return {name: getattr(parsed, name) for name in type(parsed).model_fields}

    async def invoke(self, ctx: ToolContext, arguments: Mapping[str, Any]) -> Any:
        """Validate arguments and call the function.

        Raises:
            ToolError: invalid arguments.
        """
        return await self.call_validated(ctx, self.validate(arguments))

    async def call_validated(self, ctx: ToolContext, kwargs: Mapping[str, Any]) -> Any:
        """Call the function with arguments that ``validate`` returned."""
        args = (ctx,) if self.takes_context else ()
        if self.blocking:
            import asyncio

            result = await asyncio.to_thread(self.function, *args, **dict(kwargs))
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
    """Build a ``Tool`` from a function's signature, type hints and docstring.

    Args:
        function: the tool; its parameters (after an optional leading ``ToolContext``) become the
            argument schema.
        name: the tool's name (default: the function's).
        description: what the model reads (default: the docstring's first paragraph).
        blocking: run in a worker thread (default: when the function is not a coroutine function).
    """
    tool_name = name or function.__name__
    # include_extras keeps ``Annotated[...]`` and with it the ``Field`` constraints and descriptions.
    hints = get_type_hints(function, include_extras=True)
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    takes_context = bool(params) and _strip_annotated(hints.get(params[0].name)) is ToolContext
    if takes_context:
        params = params[1:]
    doc = inspect.getdoc(function) or ""
    arg_docs = docstring_args(doc)
    fields: dict[str, Any] = {}
    for p in params:
        annotation = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        described = arg_docs.get(p.name)
        if described and not _has_description(annotation):
            annotation = Annotated[annotation, pydantic.Field(description=described)]
        fields[p.name] = (annotation, default)
    validator = pydantic.create_model(
        f"{tool_name}_arguments", __config__=pydantic.ConfigDict(extra="forbid"), **fields
    )
    schema = _inline_refs(validator.model_json_schema())
    _drop_titles(schema)
    return Tool(
        name=tool_name,
        description=description or doc.split("\n\n")[0] or tool_name,
        parameters=schema,
        function=function,
        takes_context=takes_context,
        validator=validator,
        blocking=(not inspect.iscoroutinefunction(function)) if blocking is None else blocking,
    )


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?|Notes?|Attributes):\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)$")


def docstring_args(doc: str) -> dict[str, str]:
    """The ``Args:`` section of a Google docstring: parameter name → description.

    Continuation lines (indented deeper than the name) are joined to their parameter's text.
    """
    out: dict[str, str] = {}
    in_args = False
    base_indent: int | None = None
    current: str | None = None
    for raw in doc.splitlines():
        line = raw.rstrip()
        header = _SECTION.match(line.strip()) if line and not line[0].isspace() else None
        if header is not None:
            in_args = header.group(1) in ("Args", "Arguments", "Parameters")
            base_indent, current = None, None
            continue
        if not in_args or not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:  # prose after the section ends it
            in_args, current = False, None
            continue
        if base_indent is None:
            base_indent = indent
        match = _ARG_LINE.match(line.strip()) if indent == base_indent else None
        if match is not None:
            current = match.group(1).lstrip("*")
            out[current] = match.group(2).strip()
        elif current is not None:
            out[current] = f"{out[current]} {line.strip()}".strip()
    return out


def _strip_annotated(annotation: Any) -> Any:
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def _has_description(annotation: Any) -> bool:
    if get_origin(annotation) is not Annotated:
        return False
    return any(isinstance(m, pydantic.fields.FieldInfo) and m.description for m in get_args(annotation)[1:])


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with every ``$ref`` into ``$defs`` replaced by the definition (enums, models)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                key = ref.removeprefix("#/$defs/")
                if key in seen or key not in defs:  # a recursive type keeps its reference
                    return node
                merged = {**walk(defs[key], seen | {key}), **{k: v for k, v in node.items() if k != "$ref"}}
                return merged
            return {k: walk(v, seen) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    out: dict[str, Any] = walk(schema, frozenset())
    if defs and b"$ref" in orjson.dumps(out):
        out["$defs"] = defs
    return out


#: Schema keys whose values are data, not subschemas: a ``title`` inside them is the user's.
_VALUES = frozenset({"default", "enum", "const", "examples"})


def _drop_titles(node: Any) -> None:
    """Remove pydantic's generated ``title`` keys (noise in a tool schema), keeping property names."""
    if isinstance(node, dict):
        node.pop("title", None)
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for prop in value.values():
                    _drop_titles(prop)
            elif key not in _VALUES:
                _drop_titles(value)
    elif isinstance(node, list):
        for value in node:
            _drop_titles(value)


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
