"""``MemoryHooks``: what the engine asks of memory before each turn's first model call.

Two steps, both cheap when idle: compaction (only when the history outgrew the budget, see
``penguin.memory.summaries``), then automatic recall, which searches the memory store for the
incoming message and shows the top hits to the model as a system message placed just before the
latest user message. Recall is off unless the agent's ``metadata.memory_recall_k`` or the
``memory_auto_recall_k`` setting is above zero, so agents that do not use it pay nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from penguin.agents.spec import AgentSpec
from penguin.config import Settings
from penguin.conversations.messages import Conversation, Message
from penguin.memory.records import MAX_K, MemoryHit
from penguin.memory.store import MemoryStore
from penguin.memory.summaries import Compactor

RECALL_HEADER = "Relevant memories (shared memory store; use them only if they help):"
_RECALL_CHARS = 1_000
#: A recalled memory cut shorter than this is left out rather than shown as a stub.
_MIN_LINE = 80
#: Vector-only hits below this cosine similarity are left out of recall: a nearest neighbour
#: always exists, but a weak one is noise in the context.
DEFAULT_MIN_SIMILARITY = 0.3


@dataclass(frozen=True, slots=True, kw_only=True)
class RecallBlock:
    """Recalled memories, ready to place in a model request."""

    #: A ``system`` message in wire form.
    message: dict[str, Any]
    #: Its estimated size in tokens (the engine takes it off the history budget).
    tokens: int
    memory_ids: tuple[str, ...]

    def insert(self, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with the block placed right before the last user message."""
        out = list(messages)
        at = next((i for i in range(len(out) - 1, -1, -1) if out[i].get("role") == "user"), len(out))
        out.insert(at, self.message)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnMemory:
    """What ``MemoryHooks.before_turn`` hands back to the engine."""

    #: The history to assemble from (it now ends with the summary if one was written).
    history: list[Message]
    recall: RecallBlock | None = None
    #: The summary message written by this call, if the conversation was compacted.
    summary: Message | None = None


def format_hit(hit: MemoryHit) -> str:
    """One recalled memory as a line: who wrote it and when, then the text."""
    m = hit.memory
    day = time.strftime("%Y-%m-%d", time.gmtime(m.created_at))
    text = " ".join(m.text.split())
    text = text if len(text) <= _RECALL_CHARS else text[: _RECALL_CHARS - 1] + "…"
    return f"- [{m.author}, {day}] {text}"


class MemoryHooks:
    """Compaction and automatic recall, called by ``Engine.run_turn``."""

    def __init__(
        self,
        *,
        store: MemoryStore,
        compactor: Compactor,
        settings: Settings,
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
    ) -> None:
        self.store = store
        self.compactor = compactor
        self._settings = settings
        self._min_similarity = min_similarity

    def recall_k(self, spec: AgentSpec) -> int:
        """Memories to recall for this agent: ``metadata.memory_recall_k``, else the setting."""
        value = spec.metadata.get("memory_recall_k")
        if isinstance(value, bool) or not isinstance(value, int):
            value = self._settings.memory_auto_recall_k
        return max(0, min(value, MAX_K))

    async def before_turn(
        self,
        spec: AgentSpec,
        conversation: Conversation,
        history: list[Message],
        pending: Sequence[Message],
        budget: int,
    ) -> TurnMemory:
        """Compact if needed, then recall for the latest pending user message.

        The caller holds the conversation's writer slot; ``pending`` are the turn's unsaved messages.
        """
        summary = await self.compactor.maybe_compact(spec, conversation, history, pending, budget)
        if summary is not None and (not history or history[-1] is not summary):
            # The store's cached list normally grew in place; if it was evicted, take the new one.
            history = await self.compactor.conversation_history(conversation.id)
        k = self.recall_k(spec)
        query = next((m.content for m in reversed(pending) if m.role == "user"), "")
        if k == 0 or not query.strip():
            return TurnMemory(history=history, summary=summary)
        current = self.compactor.latest_summary(conversation.id, history)
        in_context = (current.metadata or {}).get("memory_id") if current is not None else None
        hits = await self.store.search(query, k + 1, agent_id=spec.agent_id)
        useful = [
            h
            for h in hits
            if h.memory.id != in_context
            and (h.keyword_rank is not None or (h.similarity or 0.0) >= self._min_similarity)
        ][:k]
        # Recall may take a quarter of the budget; the engine takes it off the history's share.
        room = max(budget // 4 * 4 - len(RECALL_HEADER), 0)
        lines: list[str] = []
        for hit in useful:
            line = format_hit(hit)
            if len(line) + 1 > room:
                if room >= _MIN_LINE:
                    lines.append(line[: room - 2] + "…")
                break
            lines.append(line)
            room -= len(line) + 1
        if not lines:
            return TurnMemory(history=history, summary=summary)
        content = "\n".join([RECALL_HEADER, *lines])
        block = RecallBlock(
            message={"role": "system", "content": content},
            tokens=len(content) // 4 + 4,
            memory_ids=tuple(h.memory.id for h in useful[: len(lines)]),
        )
        return TurnMemory(history=history, recall=block, summary=summary)
