"""Shared memory: one persistent store every agent of a tenant can search, with summaries.

``MemoryStore`` holds the memories (hybrid keyword + vector search, scopes, provenance);
``Compactor`` turns a conversation's old turns into summaries; ``MemoryHooks`` is what the engine
calls before each turn (compaction, then automatic recall); ``memory_tools`` are the agents'
explicit ``memory_search`` / ``memory_add`` tools. ``PenguinCore`` builds and wires all of them.
"""

from penguin.memory.embedders import Embedder, HashEmbedder, MiniLMEmbedder, OpenAIEmbedder, make_embedder
from penguin.memory.fusion import Ranking, reciprocal_rank_fusion
from penguin.memory.hooks import MemoryHooks, RecallBlock
from penguin.memory.records import Memory, MemoryHit, MemoryNotFound, MemoryStats, Scope, SearchFilter, SearchMode
from penguin.memory.store import MemoryStore, NewMemory
from penguin.memory.summaries import Compactor
from penguin.memory.tools import memory_tools

__all__ = [
    "Compactor",
    "Embedder",
    "HashEmbedder",
    "Memory",
    "MemoryHit",
    "MemoryHooks",
    "MemoryNotFound",
    "MemoryStats",
    "MemoryStore",
    "MiniLMEmbedder",
    "NewMemory",
    "OpenAIEmbedder",
    "Ranking",
    "RecallBlock",
    "Scope",
    "SearchFilter",
    "SearchMode",
    "make_embedder",
    "memory_tools",
    "reciprocal_rank_fusion",
]
