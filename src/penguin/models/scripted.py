"""A model controlled by a local script or function: deterministic, offline, shipped in the product.

``scripted:echo`` replies with the last user message's text. ``scripted:tool`` calls the tool named
by the ``tool`` parameter (arguments from ``arguments``) once per user message, then answers with
the tool's result. ``scripted:error`` always fails with ``ModelError``. Any ``ScriptedModel`` built
from a list of replies or a function can be registered under its own name for tests and demos.
Parameters honoured by every scripted model: ``delay`` (seconds to wait before answering, at an
await point so cancellation works) and ``chunk`` (characters per streamed delta, default 8).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import orjson

from penguin.errors import ModelError
from penguin.models.base import (
    ModelRequest,
    ModelResponse,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

Reply = str | ModelResponse
ScriptFunction = Callable[[ModelRequest], Reply | Awaitable[Reply]]


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about four characters a token), used where a provider reports none."""
    return (len(text) + 3) // 4


def last_user_text(request: ModelRequest) -> str:
    for message in reversed(request.messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else orjson.dumps(content).decode()
    return ""


def _echo(request: ModelRequest) -> Reply:
    return last_user_text(request)


def _error(request: ModelRequest) -> Reply:
    raise ModelError("scripted failure", provider="scripted", status_code=500)


def _tool(request: ModelRequest) -> Reply:
    last = request.messages[-1] if request.messages else {}
    if last.get("role") == "tool":
        return str(last.get("content", ""))
    tool = request.parameters.get("tool")
    if not tool and request.tools:
        tool = request.tools[0].name
    if not tool:
        return last_user_text(request)
    arguments = request.parameters.get("arguments", {})
    calls_so_far = sum(1 for m in request.messages if m.get("role") == "assistant")
    return ModelResponse(
        text="",
        tool_calls=(ToolCall(id=f"call_{calls_so_far}", name=str(tool), arguments=orjson.dumps(arguments).decode()),),
        finish_reason="tool_calls",
    )


BUILTIN_SCRIPTS: dict[str, ScriptFunction] = {"echo": _echo, "error": _error, "tool": _tool}


class ScriptedModel:
    """A ``Model`` whose replies come from a function, or from a list played in order (then repeated)."""

    def __init__(self, script: ScriptFunction | Iterable[Reply], *, name: str = "scripted:custom") -> None:
        self.name = name
        if callable(script):
            self._fn: ScriptFunction = script
        else:
            replies = list(script)
            if not replies:
                raise ValueError("a scripted model needs at least one reply")
            cycle = itertools.cycle(replies)
            self._fn = lambda _request: next(cycle)
        self.calls: int = 0

    async def _reply(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        delay = request.parameters.get("delay")
        if delay:
            await asyncio.sleep(float(delay))
        out = self._fn(request)
        if inspect.isawaitable(out):
            out = await out
        if isinstance(out, ModelResponse):
            if out.usage.total_tokens:
                return out
            return ModelResponse(
                text=out.text,
                tool_calls=out.tool_calls,
                usage=self._usage(request, out.text),
                finish_reason=out.finish_reason,
                model=self.name,
            )
        return ModelResponse(text=str(out), usage=self._usage(request, str(out)), model=self.name)

    @staticmethod
    def _usage(request: ModelRequest, text: str) -> Usage:
        prompt = sum(estimate_tokens(str(m.get("content") or "")) for m in request.messages)
        return Usage(input_tokens=prompt, output_tokens=estimate_tokens(text))

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self._reply(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        response = await self._reply(request)
        chunk = max(1, int(request.parameters.get("chunk", 8)))
        text = response.text
        for start in range(0, len(text), chunk):
            yield TextDelta(text=text[start : start + chunk])
            await asyncio.sleep(0)
        for index, call in enumerate(response.tool_calls):
            yield ToolCallDelta(index=index, id=call.id, name=call.name, arguments=call.arguments)
        yield StreamDone(response=response)

    async def aclose(self) -> None:
        return None


def make_scripted(model_name: str, extra: dict[str, ScriptFunction] | None = None) -> ScriptedModel:
    """Build the built-in scripted model named by the part after ``scripted:``."""
    scripts = {**BUILTIN_SCRIPTS, **(extra or {})}
    fn = scripts.get(model_name)
    if fn is None:
        known = ", ".join(sorted(scripts))
        raise KeyError(f"unknown scripted model {model_name!r}; known: {known}")
    return ScriptedModel(fn, name=f"scripted:{model_name}")


def script_reply(text: str = "", **tool_calls: dict[str, Any]) -> ModelResponse:
    """Convenience for scripts: a reply with text and/or tool calls given as ``name=arguments``."""
    calls = tuple(
        ToolCall(id=f"call_{i}", name=name, arguments=orjson.dumps(args).decode())
        for i, (name, args) in enumerate(tool_calls.items())
    )
    return ModelResponse(text=text, tool_calls=calls, finish_reason="tool_calls" if calls else "stop")
