"""The plain data of the memory store: a memory, a search hit, the store's statistics.

A memory is a piece of text some agent chose to keep, with its provenance (author agent, source
conversation and message) and a scope: ``shared`` memories are visible to every agent of the
tenant, ``agent`` memories only to their author. Input checks live here, next to the fields they
guard, so the store, the core and the tools reject the same things with the same messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from penguin.errors import NotFound, ValidationFailed

Scope = Literal["shared", "agent"]
SCOPES: tuple[Scope, ...] = ("shared", "agent")
SearchMode = Literal["hybrid", "keyword", "vector"]
SEARCH_MODES: tuple[SearchMode, ...] = ("hybrid", "keyword", "vector")

MAX_TEXT_CHARS = 100_000
MAX_TAGS = 32
MAX_TAG_CHARS = 64
MAX_K = 100


class MemoryNotFound(NotFound):
    """No memory with that id is visible to the caller (it does not exist, or is another agent's)."""

    code = "memory-not-found"
    title = "Memory not found"


@dataclass(frozen=True, slots=True, kw_only=True)
class Memory:
    """One stored memory."""

    #: Time-ordered id (``mem_...``).
    id: str
    text: str
    #: The agent that wrote it.
    author: str
    #: ``shared``: every agent of the tenant sees it; ``agent``: only ``author`` does.
    scope: Scope
    tags: tuple[str, ...] = ()
    #: Caller-defined JSON object (a summary records the message range it covers here).
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: Where the memory came from, when it came from a conversation.
    source_conversation_id: str | None = None
    source_message_id: str | None = None
    #: Float epoch seconds.
    created_at: float
    updated_at: float
    tenant_id: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "author": self.author,
            "scope": self.scope,
            "tags": list(self.tags),
            "metadata": dict(self.metadata),
            "source_conversation_id": self.source_conversation_id,
            "source_message_id": self.source_message_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "tenant_id": self.tenant_id,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryHit:
    """One search result: the memory, its fused score and how each retriever ranked it."""

    memory: Memory
    #: Higher is better. Hybrid: reciprocal-rank-fusion score; keyword: -bm25 (SQLite) or ts_rank
    #: (PostgreSQL); vector: cosine similarity.
    score: float
    #: 1-based rank in the keyword list, or None when keyword search did not return it.
    keyword_rank: int | None = None
    #: 1-based rank in the vector list, or None when vector search did not return it (or is off).
    vector_rank: int | None = None
    #: Cosine similarity to the query, when vector search returned it.
    similarity: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.memory.to_dict(),
            "score": self.score,
            "keyword_rank": self.keyword_rank,
            "vector_rank": self.vector_rank,
            "similarity": self.similarity,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryStats:
    """Counts and configuration of the store (tenant-wide; no memory content)."""

    total: int
    shared: int
    private: int
    #: Memories per author agent.
    by_author: Mapping[str, int]
    #: ``none`` (keyword search only), ``minilm`` or ``openai:<model>``.
    embedder: str
    #: Vector dimension, None until the embedder produced a vector (or when there is none).
    dimension: int | None
    #: Memories with a vector in the in-process index.
    vectors: int
    #: Memories still waiting for a vector (embedder busy or failing).
    pending_vectors: int
    #: ``fts5`` (SQLite) or ``tsvector`` (PostgreSQL).
    keyword_index: str
    #: The last embedder failure, if any (search then falls back to keywords).
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "shared": self.shared,
            "private": self.private,
            "by_author": dict(self.by_author),
            "embedder": self.embedder,
            "dimension": self.dimension,
            "vectors": self.vectors,
            "pending_vectors": self.pending_vectors,
            "keyword_index": self.keyword_index,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchFilter:
    """Which memories a search or listing may return, beyond the caller's visibility."""

    #: The calling agent: it sees shared memories and its own private ones.
    agent_id: str
    author: str | None = None
    scope: Scope | None = None
    #: Memories carrying every one of these tags.
    tags: tuple[str, ...] = ()
    #: ``created_at`` bounds in float epoch seconds: ``since <= created_at < until``.
    since: float | None = None
    until: float | None = None


# Input checks ------------------------------------------------------------------------------------


def check_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed("memory text must be a non-empty string", field="text")
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationFailed(f"memory text is longer than {MAX_TEXT_CHARS} characters; split it", field="text")
    return text


def check_scope(scope: object) -> Scope:
    if scope == "shared":
        return "shared"
    if scope == "agent":
        return "agent"
    raise ValidationFailed(
        f"scope must be 'shared' (every agent) or 'agent' (its author only), got {scope!r}", field="scope"
    )


def check_tags(tags: Iterable[object] | None) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str):
        raise ValidationFailed("tags must be a list of strings, not one string", field="tags")
    out: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not 1 <= len(tag.strip()) <= MAX_TAG_CHARS:
            raise ValidationFailed(f"each tag must be a string of 1-{MAX_TAG_CHARS} characters", field="tags")
        tag = tag.strip()
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValidationFailed(f"at most {MAX_TAGS} tags per memory", field="tags")
    return tuple(out)


def check_metadata(metadata: object) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ValidationFailed("metadata must be an object", field="metadata")
    try:
        orjson.dumps(dict(metadata))
    except TypeError as exc:
        raise ValidationFailed(f"metadata must be JSON-serializable: {exc}", field="metadata") from None
    return dict(metadata)


def check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ValidationFailed(f"k must be an integer between 1 and {MAX_K}", field="k")
    return k


def check_mode(mode: object) -> SearchMode:
    for known in SEARCH_MODES:
        if mode == known:
            return known
    raise ValidationFailed(f"mode must be one of {list(SEARCH_MODES)}, got {mode!r}", field="mode")


def check_time(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationFailed(f"{name} must be a number of epoch seconds", field=name)
    return float(value)
