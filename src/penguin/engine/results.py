"""What a turn returns and what it streams."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from penguin.models.base import Usage

TurnEventType = Literal["start", "delta", "tool_call", "tool_result", "final", "error"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEvent:
    """One streamed event of a turn; ``data`` depends on ``type``.

    ``start``: {turn_id}; ``delta``: {text}; ``tool_call``: {id, name, arguments};
    ``tool_result``: ToolOutcome.to_dict(); ``final``: ChatResult.to_dict(); ``error``: problem body.
    """

    type: TurnEventType
    agent_id: str
    conversation_id: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.data, "type": self.type, "agent_id": self.agent_id, "conversation_id": self.conversation_id}


EventHook = Callable[[TurnEvent], Awaitable[None]]
"""A per-request callback for turn events (never registered globally)."""


@dataclass(slots=True, kw_only=True)
class ChatResult:
    """The outcome of one turn. ``str(result)`` is the reply text."""

    text: str
    agent_id: str
    conversation_id: str
    turn_id: str
    #: Every tool call made during the turn, in order, with its result and timing.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    #: Milliseconds: ``total``, ``model`` (sum of model calls), ``tools``, ``queued`` (waiting for the writer slot).
    timings: dict[str, float] = field(default_factory=dict)
    #: ``completed``, or ``max_iterations`` when the loop stopped on its bound.
    status: str = "completed"
    iterations: int = 0
    #: True when this request created the agent (auto-create on first use).
    created: bool = False
    model: str = ""
    message_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "conversation_id": self.conversation_id,
            "turn_id": self.turn_id,
            "response": self.text,
            "tool_calls": self.tool_calls,
            "usage": self.usage.to_dict(),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "status": self.status,
            "iterations": self.iterations,
            "created": self.created,
            "model": self.model,
        }
