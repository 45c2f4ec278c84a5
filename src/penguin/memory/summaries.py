"""Compaction: when a conversation outgrows its context budget, its older turns become a summary.

The summary is a ``system`` message of type ``summary`` appended to the conversation, whose
metadata says what it covers (``covers.to_seq``: it stands in for every earlier message, and for
any earlier summary, whose content it carries forward; ``covers.message_ids``: the messages it
summarised directly). Context assembly (``penguin.conversations.context.assemble``) then sends the
summary plus the turns after ``to_seq``. The same text is stored in memory (author = the agent,
scope from ``memory_summary_scope``, tag ``summary``), so a fact that scrolled out of a summary
chain can still be recalled by search.

The agent's model writes the summary (or ``memory_summary_model``). A scripted model cannot
summarise, and any model can fail, so both fall back to an extractive summary: the sentences that
carry the rarest words (names, numbers, identifiers), kept in their original order.

The hot path stays cheap: the compactor keeps a running token estimate per conversation and only
looks at messages appended since the last turn, so a turn under budget costs a few additions and
no database read.
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from penguin.agents.spec import AgentSpec
from penguin.config import Settings
from penguin.conversations.context import MODEL_VISIBLE, estimate_tokens, summary_cutoff
from penguin.conversations.messages import Conversation, Message
from penguin.conversations.store import ConversationStore
from penguin.errors import PenguinError
from penguin.memory.store import MemoryStore
from penguin.models.base import ModelRequest
from penguin.models.registry import ModelRef, ModelRegistry

SUMMARY_PROMPT = (
    "You compress the earlier part of a conversation so that it can continue without it. Write a "
    "concise summary in plain sentences. Keep every fact, name, number, identifier, decision, "
    "preference, commitment and open question; drop greetings and repetition. Do not invent "
    "anything. Answer with the summary only."
)
_MESSAGE_CHARS = 2_000
_WINDOWS = 1_024
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W_]+")


@dataclass(slots=True)
class _Window:
    """The running token estimate of what context assembly would send for one conversation."""

    #: The history list it was measured on (the store's cached list, which only grows).
    history: list[Message]
    #: How many of its messages are counted.
    seen: int
    #: Estimated tokens of the latest summary plus every visible message after its cutoff.
    tokens: int
    summary: Message | None


def _measure(history: list[Message]) -> _Window:
    summary = next((m for m in reversed(history) if m.message_type == "summary" and summary_cutoff(m)), None)
    cutoff = summary_cutoff(summary) if summary is not None else 0
    tokens = estimate_tokens(summary) if summary is not None else 0
    for m in history:
        if m.seq > cutoff and m.message_type in MODEL_VISIBLE and m is not summary and m.message_type != "summary":
            tokens += estimate_tokens(m)
    return _Window(history=history, seen=len(history), tokens=tokens, summary=summary)


class Compactor:
    """Summarises the older turns of conversations that no longer fit their budget."""

    def __init__(
        self,
        *,
        conversations: ConversationStore,
        models: ModelRegistry,
        memory: MemoryStore,
        settings: Settings,
        keep_ratio: float = 0.5,
        summary_ratio: float = 0.25,
    ) -> None:
        """Build the compactor from the services it reads and writes.

        Args:
            keep_ratio: Share of the budget left to recent turns after a compaction.
            summary_ratio: Largest share of the budget a summary may take.
        """
        self._conversations = conversations
        self._models = models
        self._memory = memory
        self._settings = settings
        self._keep_ratio = keep_ratio
        self._summary_ratio = summary_ratio
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    async def conversation_history(self, conversation_id: str) -> list[Message]:
        """The conversation's full history, from the conversation store's cache."""
        return await self._conversations.messages(conversation_id)

    def window_tokens(self, conversation_id: str, history: list[Message]) -> int:
        """Estimated tokens the history contributes to the next context (incremental)."""
        return self._window(conversation_id, history).tokens

    def latest_summary(self, conversation_id: str, history: list[Message]) -> Message | None:
        return self._window(conversation_id, history).summary

    def _window(self, conversation_id: str, history: list[Message]) -> _Window:
        window = self._windows.get(conversation_id)
        if window is None or window.history is not history or window.seen > len(history):
            window = _measure(history)  # first sight, or the store replaced the list (rollback)
        elif window.seen < len(history):
            cutoff = summary_cutoff(window.summary) if window.summary is not None else 0
            for m in history[window.seen :]:
                if m.message_type == "summary" and summary_cutoff(m):
                    window = _measure(history)
                    break
                if m.message_type in MODEL_VISIBLE and m.seq > cutoff:
                    window.tokens += estimate_tokens(m)
            window.seen = len(history)
        self._windows[conversation_id] = window
        self._windows.move_to_end(conversation_id)
        while len(self._windows) > _WINDOWS:
            self._windows.popitem(last=False)
        return window

    async def maybe_compact(
        self,
        spec: AgentSpec,
        conversation: Conversation,
        history: list[Message],
        pending: Sequence[Message],
        budget: int,
    ) -> Message | None:
        """Compact when the history plus ``pending`` (unsaved) messages exceed ``budget`` tokens.

        The caller holds the conversation's writer slot. Returns the new summary message, if any.
        """
        fixed = len(spec.system_prompt) // 4 + sum(estimate_tokens(m) for m in pending)
        if fixed + self.window_tokens(conversation.id, history) <= budget:
            return None
        return await self.compact(spec, conversation, history, budget, reserved=fixed)

    async def compact(
        self, spec: AgentSpec, conversation: Conversation, history: list[Message], budget: int, *, reserved: int = 0
    ) -> Message | None:
        """Summarise everything but the most recent turns; None when nothing can be summarised."""
        previous = self.latest_summary(conversation.id, history)
        cutoff = summary_cutoff(previous) if previous is not None else 0
        visible = [
            m for m in history if m.seq > cutoff and m.message_type in MODEL_VISIBLE and m.message_type != "summary"
        ]
        keep_budget = max(int(budget * self._keep_ratio) - reserved, 0)
        start, used = len(visible), 0
        while start > 0 and used + estimate_tokens(visible[start - 1]) <= keep_budget:
            start -= 1
            used += estimate_tokens(visible[start])
        # A kept tail must not open with tool results whose assistant call was summarised away.
        while start < len(visible) and visible[start].role == "tool":
            start += 1
        source = visible[:start]
        if not source:
            return None
        max_chars = max(int(budget * self._summary_ratio) * 4, 400)
        text, method, model_name = await self._summarise(spec, previous, source, max_chars)
        covers: dict[str, Any] = {
            "from_seq": 1,
            "to_seq": source[-1].seq,
            "message_ids": [m.id for m in source],
            "previous_summary_id": previous.id if previous is not None else None,
        }
        metadata: dict[str, Any] = {"covers": covers, "method": method, "model": model_name}
        message = Message(
            conversation_id=conversation.id,
            agent_id=spec.agent_id,
            sender="system",
            role="system",
            message_type="summary",
            content=f"Summary of the earlier conversation (messages 1-{source[-1].seq}):\n{text}",
            metadata=metadata,
            tenant_id=spec.tenant_id,
        )
        memory_id = await self._memory.add(
            text,
            {"covers": {k: v for k, v in covers.items() if k != "message_ids"}, "method": method},
            author=spec.agent_id,
            scope=self._settings.memory_summary_scope,
            tags=("summary",),
            source_conversation_id=conversation.id,
            source_message_id=message.id,
        )
        metadata["memory_id"] = memory_id
        await self._conversations.append(conversation.id, [message])
        return message

    def summary_model(self, spec: AgentSpec) -> str | None:
        """The model that writes summaries, or None to go straight to the extractive summary."""
        configured = self._settings.memory_summary_model
        if configured:
            return configured
        name = spec.model or self._settings.resolved_default_model()
        return None if ModelRef.parse(name).provider == "scripted" else name

    async def _summarise(
        self, spec: AgentSpec, previous: Message | None, source: Sequence[Message], max_chars: int
    ) -> tuple[str, str, str | None]:
        """``(text, method, model)``: the model's summary, or the extractive one."""
        model_name = self.summary_model(spec)
        if model_name is not None:
            transcript = render_transcript(previous, source, max_chars=max_chars * 8)
            request = ModelRequest(
                messages=[{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": transcript}],
                agent_id=spec.agent_id,
            )
            try:
                response = await self._models.get(model_name).complete(request)
            except PenguinError:
                response = None  # the turn must go on: fall back to the extractive summary
            if response is not None and response.text.strip():
                return _clip(response.text.strip(), max_chars), "model", model_name
        return extractive_summary(previous, source, max_chars=max_chars), "extractive", None


def _speaker(m: Message) -> str:
    if m.role == "tool":
        return f"tool {m.name or ''}".strip()
    return m.role if m.sender in ("human", "system", m.agent_id) else f"{m.role} ({m.sender})"


def _body(m: Message) -> str:
    text = m.content or ""
    for call in m.tool_calls or ():
        function = call.get("function", {})
        text += f" [called {function.get('name', '?')}({str(function.get('arguments', ''))[:200]})]"
    return _clip(text.strip(), _MESSAGE_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 1, 0)].rstrip() + "…"


def _previous_text(previous: Message) -> str:
    return previous.content.split("\n", 1)[1] if "\n" in previous.content else previous.content


def render_transcript(previous: Message | None, source: Sequence[Message], *, max_chars: int) -> str:
    """The text a summarising model reads: the previous summary, then one line per message."""
    parts = [f"Earlier summary:\n{_previous_text(previous)}\n"] if previous is not None else []
    parts += [f"{_speaker(m)}: {_body(m)}" for m in source]
    return _clip("\n".join(parts), max_chars)


def extractive_summary(previous: Message | None, source: Sequence[Message], *, max_chars: int) -> str:
    """The most informative sentences of the previous summary and the source, in original order.

    A sentence scores the sum of its words' inverse document frequency within this batch
    (numbers and identifiers count extra) over the square root of its length, so rare, specific
    sentences win over chatter. Carried-over summary lines and user sentences get a bonus;
    tool output a malus. Duplicates (an echo of the user) count once.
    """
    units: list[tuple[str, float]] = []  # (line, weight)
    if previous is not None:
        units += [(line.strip(), 1.5) for line in _previous_text(previous).splitlines() if line.strip()]
    for m in source:
        weight = {"user": 1.3, "tool": 0.5}.get(m.role, 1.0)
        speaker = _speaker(m)
        for sentence in _SENTENCE.split(_body(m)):
            if sentence.strip():
                units.append((f"- {speaker}: {sentence.strip()}", weight))
    seen: set[str] = set()
    unique: list[tuple[int, str, float, list[str]]] = []
    for order, (line, weight) in enumerate(units):
        words = _WORD.findall(line.lower())
        key = " ".join(words[1:])  # ignore the speaker when spotting an echo
        if key and key not in seen:
            seen.add(key)
            unique.append((order, line, weight, words))
    df = Counter(word for _, _, _, words in unique for word in set(words))
    n = len(unique)

    def score(words: list[str], weight: float) -> float:
        idf = sum(
            (math.log((n + 1) / (df[w] + 1)) + 1) * (1.5 if any(c.isdigit() for c in w) else 1.0) for w in set(words)
        )
        return weight * idf / math.sqrt(len(words) + 1)

    ranked = sorted(unique, key=lambda u: -score(u[3], u[2]))
    chosen: list[tuple[int, str]] = []
    room = max_chars
    for order, line, _, _ in ranked:
        line = _clip(line, min(room, 600))
        if len(line) + 1 <= room and len(line) > 3:
            chosen.append((order, line))
            room -= len(line) + 1
    return "\n".join(line for _, line in sorted(chosen))
