"""The agents' memory tools: ``memory_search`` and ``memory_add``.

Both act as the calling agent (``ToolContext.agent_id``): a search sees shared memories and the
caller's own private ones, and an added memory is authored by the caller, with the conversation
it came from recorded as provenance. They are built around one ``MemoryStore`` (passed in, never
looked up) and registered by ``PenguinCore``.
"""

from __future__ import annotations

from typing import Any, Literal

from penguin.memory.records import MAX_K
from penguin.memory.store import MemoryStore
from penguin.tools.base import Tool, ToolContext, tool_from_function

_RESULT_CHARS = 2_000


def memory_tools(store: MemoryStore) -> list[Tool]:
    """``memory_search`` and ``memory_add`` bound to ``store``."""

    async def memory_search(ctx: ToolContext, query: str, k: int = 5) -> list[dict[str, Any]]:
        """Search the shared memory store (shared memories and your own private ones).

        Returns the best matches first, each with its id, text, author agent, scope, tags and the
        conversation it came from.
        """
        hits = await store.search(query, max(1, min(k, MAX_K)), agent_id=ctx.agent_id)
        return [
            {
                "id": h.memory.id,
                "text": h.memory.text[:_RESULT_CHARS],
                "author": h.memory.author,
                "scope": h.memory.scope,
                "tags": list(h.memory.tags),
                "source_conversation_id": h.memory.source_conversation_id,
                "score": round(h.score, 6),
            }
            for h in hits
        ]

    async def memory_add(
        ctx: ToolContext,
        text: str,
        scope: Literal["shared", "agent"] = "shared",
        tags: list[str] | None = None,
    ) -> dict[str, Any]:
        """Remember a fact for later. scope 'shared' lets every agent find it; 'agent' keeps it private
        to you."""
        memory_id = await store.add(
            text,
            author=ctx.agent_id,
            scope=scope,
            tags=tags or (),
            source_conversation_id=ctx.conversation_id,
        )
        return {"id": memory_id, "scope": scope}

    return [tool_from_function(memory_search), tool_from_function(memory_add)]
