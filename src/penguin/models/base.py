"""The ``Model`` protocol and the plain data that crosses it.

Messages cross the seam in the OpenAI chat-completions shape (``{"role": ..., "content": ...,
"tool_calls": [...], "tool_call_id": ...}``) because it is the lingua franca of providers and lets
the hot path hand a list straight to the wire encoder. Other wire clients (Anthropic, local)
convert at their own edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

WireMessage = dict[str, Any]
"""One chat message in OpenAI chat-completions shape."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSchema:
    """A tool offered to the model."""

    name: str
    description: str
    #: JSON Schema of the arguments object.
    parameters: Mapping[str, Any]

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": dict(self.parameters)},
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """A tool call the model asked for. ``arguments`` is the raw JSON text the model produced."""

    id: str
    name: str
    arguments: str

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(slots=True, kw_only=True)
class Usage:
    """Token usage. Counts are as the provider reported them (0 when it reports none)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    """One model call."""

    messages: Sequence[WireMessage]
    tools: Sequence[ToolSchema] = ()
    #: Provider parameters (temperature, max_tokens, top_p, ...), passed through.
    parameters: Mapping[str, Any] = field(default_factory=dict)
    #: Agent making the call, for logging, fair queueing and scripted models.
    agent_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    """A complete model answer."""

    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    model: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta:
    kind: Literal["text"] = "text"
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDelta:
    """A fragment of a tool call; ``index`` identifies the call across fragments."""

    kind: Literal["tool_call"] = "tool_call"
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamDone:
    """The last stream event: the assembled response."""

    kind: Literal["done"] = "done"
    response: ModelResponse


StreamEvent = TextDelta | ToolCallDelta | StreamDone


@runtime_checkable
class Model(Protocol):
    """A chat model. Implementations: openai, anthropic, local, scripted."""

    #: ``provider:model`` string this instance serves.
    name: str

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one call to completion.

        Raises:
            ModelError: the provider failed after retries.
        """
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Stream one call; the last event is always ``StreamDone``."""
        ...

    async def aclose(self) -> None:
        """Release connections or loaded weights."""
        ...


class StreamAssembler:
    """Builds a ``ModelResponse`` from stream deltas (shared by every streaming wire client)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.text_parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage = Usage()
        self.finish_reason = "stop"

    def add(self, event: TextDelta | ToolCallDelta) -> None:
        if isinstance(event, TextDelta):
            self.text_parts.append(event.text)
            return
        slot = self.calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
        if event.id:
            slot["id"] = event.id
        if event.name:
            slot["name"] += event.name
        slot["arguments"] += event.arguments

    def response(self) -> ModelResponse:
        calls = tuple(
            ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"] or "{}")
            for i, c in sorted(self.calls.items())
        )
        return ModelResponse(
            text="".join(self.text_parts),
            tool_calls=calls,
            usage=self.usage,
            finish_reason="tool_calls" if calls else self.finish_reason,
            model=self.model,
        )
