"""Context assembly: the system prompt plus as much recent history as fits the token budget."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from contextlib import suppress
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

    This walks the whole history; the engine, which assembles a growing history before every model
    call, uses a ``ContextAssembler`` that gives the same answer from memoised measurements.
    """
    return _assemble_walk(system_prompt, history, budget_tokens)


class ContextAssembler:
    """``assemble`` for histories that only grow between calls, remembering what it measured.

    What each message contributes (its cost, wire form, context block) is memoised per history in
    a ``_Window`` and only the new tail is measured; the window itself is found by binary search
    over running totals. Every hit is checked against the history it is asked about
    (``_Window.extends_to``), so a rolled-back, branched or edited history is measured afresh and
    the result is always the one ``assemble`` gives for the same arguments. One per engine.
    """

    #: Histories whose windows are remembered by default. Each pins its messages, so it is bounded.
    LIMIT = 256

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        #: id(first message of a history) -> its window (insertion order is recency).
        self._windows: dict[int, _Window] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def assemble(self, system_prompt: str, history: Sequence[Message], budget_tokens: int) -> list[dict[str, Any]]:
        """As the module's ``assemble``."""
        if not history or type(history) is not list:
            return _assemble_walk(system_prompt, history, budget_tokens)
        key = id(history[0])
        windows = self._windows
        # Taking the window out of the memo makes this call its only user, so concurrent callers
        # (threads) never see one half-extended; they measure their own instead.
        window = windows.pop(key, None)
        if window is None or not window.extends_to(history):
            window = _Window()
        try:
            window.extend(history)
        except Exception:
            # Something here cannot be measured (malformed tool calls, unserialisable context): the
            # walk raises exactly what it always did, or succeeds if the bad message is out of reach.
            return _assemble_walk(system_prompt, history, budget_tokens)
        out = window.select(system_prompt, budget_tokens)
        windows[key] = window
        if len(windows) > self.limit:
            # Another thread may change the memo meanwhile; losing an eviction race is harmless.
            with suppress(KeyError, RuntimeError, StopIteration):
                del windows[next(iter(windows))]
        return out if out is not None else _assemble_walk(system_prompt, history, budget_tokens)


class _Window:
    """What one history's model-visible messages contribute to a context, by position.

    ``visible[i]`` is the i-th model-visible message; its output (an optional context block, then
    its wire form) is ``wire[start[i]:start[i + 1]]`` — nothing for a covering summary, which is
    sent separately — and ``total[i]`` is the cost of the non-summary messages before it.
    Messages are treated as immutable once built, as ``Message.wire()`` already does, except
    ``seq`` (assigned when a turn is persisted), which is always read from the message itself.
    """

    __slots__ = ("cost", "cover", "last_summary", "messages", "start", "total", "visible", "wire")

    def __init__(self) -> None:
        #: Every message measured, in order; the window applies to histories that start with them.
        self.messages: list[Message] = []
        self.visible: list[Message] = []
        self.cost: list[int] = []
        #: ``summary_cutoff`` of each visible message (0 unless it is a covering summary).
        self.cover: list[int] = []
        self.total: list[int] = [0]
        self.start: list[int] = [0]
        self.wire: list[dict[str, Any]] = []
        #: Index in ``visible`` of the latest covering summary, -1 if none.
        self.last_summary = -1

    def extends_to(self, history: list[Message]) -> bool:
        """Whether ``history`` begins with exactly the messages this window measured.

        List equality compares by identity first, so this is a C loop; a replaced message (a
        rollback, a copy, an edited list) fails it, or is equal in every field.
        """
        seen = len(self.messages)
        return seen <= len(history) and history[:seen] == self.messages

    def extend(self, history: list[Message]) -> None:
        """Measure the messages of ``history`` after the ones already measured."""
        fresh = history[len(self.messages) :]
        if not fresh:
            return
        # Measure into locals first, so a message that raises leaves the window as it was.
        visible: list[Message] = []
        cost: list[int] = []
        cover: list[int] = []
        total: list[int] = []
        start: list[int] = []
        wire: list[dict[str, Any]] = []
        running, pieces, last = self.total[-1], len(self.wire), self.last_summary
        for message in fresh:
            if message.message_type not in MODEL_VISIBLE:
                continue
            tokens = estimate_tokens(message)
            covers = summary_cutoff(message)
            if covers:
                last = len(self.visible) + len(visible)
            else:
                running += tokens
                meta = message.metadata
                if meta and message.role == "user" and meta.get("context"):
                    wire.append(context_block(meta["context"]))
                wire.append(message.wire())
            visible.append(message)
            cost.append(tokens)
            cover.append(covers)
            total.append(running)
            start.append(pieces + len(wire))
        self.messages.extend(fresh)
        self.visible.extend(visible)
        self.cost.extend(cost)
        self.cover.extend(cover)
        self.total.extend(total)
        self.start.extend(start)
        self.wire.extend(wire)
        self.last_summary = last

    def select(self, system_prompt: str, budget_tokens: int) -> list[dict[str, Any]] | None:
        """The context for this budget; None when only an orphaned tool result fits (rare).

        Same decisions as ``_assemble_walk``. After the latest covering summary there are only
        ordinary messages, so how many of the newest fit is a binary search over ``total``.
        Only if all of them fit does the walk go on: to the summary, then through the messages
        before it that it does not cover.
        """
        remaining = budget_tokens - (len(system_prompt) // 4 + _PER_MESSAGE_OVERHEAD if system_prompt else 0)
        visible, cost, cover, total = self.visible, self.cost, self.cover, self.total
        n = len(visible)
        last = self.last_summary
        first = n  # the oldest message picked (n: none yet)
        if last + 1 < n:
            # The newest message is picked whatever it costs; older ones while the total fits.
            first = min(bisect_left(total, total[n] - remaining, last + 1, n), n - 1)
            remaining -= total[n] - total[first]
        picked = n - first
        summary: Message | None = None
        if last >= 0 and first == last + 1 and not (picked and cost[last] > remaining):
            summary, remaining, cutoff = visible[last], remaining - cost[last], cover[last]
            for i in range(last - 1, -1, -1):
                if 0 < visible[i].seq <= cutoff:
                    break
                if cover[i]:
                    continue  # an earlier summary: superseded
                if picked and cost[i] > remaining:
                    break
                remaining -= cost[i]
                first, picked = i, picked + 1
        # Never start with a tool result whose call was cut off. Covering summaries inside the
        # picked run are not part of it (they send nothing from ``wire``).
        while picked > 1 and visible[first].role == "tool":
            first += 1
            while cover[first]:
                first += 1
            picked -= 1
        if picked == 1 and visible[first].role == "tool":
            return None
        out: list[dict[str, Any]] = [{"role": "system", "content": system_prompt}] if system_prompt else []
        if summary is not None:
            out.append(summary.wire())
        out += self.wire[self.start[first] :]
        return out


def _assemble_walk(system_prompt: str, history: Sequence[Message], budget_tokens: int) -> list[dict[str, Any]]:
    """``assemble`` from scratch: one walk over the history, newest first.

    The reference behaviour, used when the memo cannot be (a history that is not a list, a
    message whose metadata or tool calls cannot be measured, a window of one orphaned tool
    result).
    """
    remaining = budget_tokens - (len(system_prompt) // 4 + _PER_MESSAGE_OVERHEAD if system_prompt else 0)
    picked: list[Message] = []
    summary: Message | None = None
    # ``summary_cutoff`` is 0 for anything but a summary, the chosen summary's cutoff is computed
    # once, and a message without tool calls costs what ``estimate_tokens`` would say, inline.
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
