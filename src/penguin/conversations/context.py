"""Context assembly: the system prompt plus as much recent history as fits the token budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from penguin.conversations.messages import Message

#: Message types the model sees; ``status`` and ``event`` rows are for humans and telemetry.
MODEL_VISIBLE = frozenset({"message", "action", "delegation", "verdict", "summary"})
_PER_MESSAGE_OVERHEAD = 4


def estimate_tokens(message: Message) -> int:
    """About four characters a token, plus tool-call arguments and a small per-message overhead."""
    size = len(message.content)
    if message.tool_calls:
        for call in message.tool_calls:
            size += len(call.get("function", {}).get("arguments", "")) + 16
    return size // 4 + _PER_MESSAGE_OVERHEAD


def context_block(context: Mapping[str, Any]) -> dict[str, Any]:
    """The system message that carries a request's ``context`` object."""
    return {
        "role": "system",
        "content": "Context for the next message (JSON): " + orjson.dumps(dict(context)).decode(),
    }


def assemble(system_prompt: str, history: Sequence[Message], budget_tokens: int) -> list[dict[str, Any]]:
    """The wire messages for one model call, newest history first until the budget is spent.

    A window never starts with a tool result whose assistant call was cut off, and the newest
    message is always included even if it alone exceeds the budget.
    """
    remaining = budget_tokens - (len(system_prompt) // 4 + _PER_MESSAGE_OVERHEAD if system_prompt else 0)
    picked: list[Message] = []
    for message in reversed(history):
        if message.message_type not in MODEL_VISIBLE:
            continue
        cost = estimate_tokens(message)
        if picked and cost > remaining:
            break
        remaining -= cost
        picked.append(message)
    picked.reverse()
    while len(picked) > 1 and picked[0].role == "tool":
        picked.pop(0)
    out: list[dict[str, Any]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    for message in picked:
        meta = message.metadata
        if meta and message.role == "user" and meta.get("context"):
            out.append(context_block(meta["context"]))
        out.append(message.wire())
    return out
