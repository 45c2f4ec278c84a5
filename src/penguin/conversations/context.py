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


def summary_cutoff(message: Message) -> int:
    """The last seq a compaction summary stands in for (``metadata.covers.to_seq``); 0 otherwise."""
    if message.message_type != "summary" or not message.metadata:
        return 0
    covers = message.metadata.get("covers")
    return int(covers.get("to_seq", 0)) if isinstance(covers, Mapping) else 0


def context_block(context: Mapping[str, Any]) -> dict[str, Any]:
    """The system message that carries a request's ``context`` object."""
    return {
        "role": "system",
        "content": "Context for the next message (JSON): " + orjson.dumps(dict(context)).decode(),
    }


def assemble(system_prompt: str, history: Sequence[Message], budget_tokens: int) -> list[dict[str, Any]]:
    """The wire messages for one model call, newest history first until the budget is spent.

    A window never starts with a tool result whose assistant call was cut off, and the newest
    message is always included even if it alone exceeds the budget. The latest compaction summary
    (``penguin.memory.summaries``) replaces every message it covers and any earlier summary, and is
    sent right after the system prompt.
    """
    remaining = budget_tokens - (len(system_prompt) // 4 + _PER_MESSAGE_OVERHEAD if system_prompt else 0)
    picked: list[Message] = []
    summary: Message | None = None
    # This loop runs over the whole history on every model call (400 messages in the W1
    # benchmark), so it avoids per-message function calls: ``summary_cutoff`` is 0 for anything
    # but a summary, the chosen summary's cutoff is computed once, and a message without tool
    # calls costs what ``estimate_tokens`` would say, inline.
    cutoff = 0
    for message in reversed(history):
        kind = message.message_type
        if kind not in MODEL_VISIBLE:
            continue
        if cutoff and 0 < message.seq <= cutoff:
            break
        if kind == "summary" and (covers := summary_cutoff(message)):
            if summary is None:
                cost = estimate_tokens(message)
                if picked and cost > remaining:
                    break
                remaining -= cost
                summary, cutoff = message, covers
            continue
        if message.tool_calls:
            cost = estimate_tokens(message)
        else:
            cost = len(message.content) // 4 + _PER_MESSAGE_OVERHEAD
        if picked and cost > remaining:
            break
        remaining -= cost
        picked.append(message)
    picked.reverse()
    while len(picked) > 1 and picked[0].role == "tool":
        picked.pop(0)
    if picked and picked[0].role == "tool":
        # Only the newest tool result fits: send the assistant call it answers too (over budget)
        # rather than a result no provider accepts without its call.
        at = max(i for i, m in enumerate(history) if m is picked[0])
        while at > 0 and not (history[at].role == "assistant" and history[at].tool_calls):
            at -= 1
        picked = [m for m in history[at:] if m.message_type in MODEL_VISIBLE and not summary_cutoff(m)]
    out: list[dict[str, Any]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    if summary is not None:
        out.append(summary.wire())
    for message in picked:
        meta = message.metadata
        if meta and message.role == "user" and meta.get("context"):
            out.append(context_block(meta["context"]))
        out.append(message.wire())
    return out
