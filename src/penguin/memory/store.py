"""``MemoryStore``: the persistent memory every agent of a tenant shares, with hybrid search.

Rows live in the same database as everything else (``penguin.memory.schema``). Search runs a
keyword retriever (``penguin.memory.keyword``: FTS5 or tsvector) and, when an embedder is set, an
exact vector retriever (``penguin.memory.semantic``) side by side, and fuses the two rankings with
reciprocal rank fusion.

Visibility is enforced in both retrievers and in every read: a caller sees ``shared`` memories and
its own ``agent`` (private) ones, never another agent's private memories; what a caller can see, it
can update or delete (only the author may change the scope).

Embedding never blocks a write. If the embedder fails, or a different embedder was configured
since the memories were written, the memory is stored and indexed for keywords at once and gets
its vector from a background task that retries with backoff (``stats().pending_vectors``).
The vector matrix is per process: with several processes on one PostgreSQL database, each sees the
others' new memories in keyword search at once and in vector search after its next restart.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from penguin.errors import Conflict, ValidationFailed
from penguin.memory.embedders import Embedder
from penguin.memory.fusion import DEFAULT_K, DEFAULT_KEYWORD_WEIGHT, Ranking, reciprocal_rank_fusion
from penguin.memory.keyword import KeywordIndex, keyword_index_for, query_terms
from penguin.memory.records import (
    Memory,
    MemoryHit,
    MemoryNotFound,
    MemoryStats,
    Scope,
    SearchFilter,
    SearchMode,
    check_k,
    check_metadata,
    check_mode,
    check_scope,
    check_tags,
    check_text,
    check_time,
)
from penguin.memory.schema import memories, memory_row, memory_tags, memory_vectors, row_memory
from penguin.memory.semantic import SemanticIndex
from penguin.naming import new_id, validate_agent_id
from penguin.storage.database import Database

_MAX_LIST = 1000

Hits = builtins.list[tuple[str, float]]


@dataclass(frozen=True, slots=True, kw_only=True)
class NewMemory:
    """One memory to add with ``MemoryStore.add_many``; fields as in ``MemoryStore.add``."""

    text: str
    author: str
    scope: Scope = "shared"
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source_conversation_id: str | None = None
    source_message_id: str | None = None


class MemoryStore:
    """Shared, persistent, searchable memory for one tenant. Build one per ``PenguinCore``."""

    def __init__(
        self,
        db: Database,
        *,
        tenant_id: str,
        embedder: Embedder | None = None,
        keyword: KeywordIndex | None = None,
        depth: int = 50,
        rrf_k: int = DEFAULT_K,
        keyword_weight: float = DEFAULT_KEYWORD_WEIGHT,
        vector_weight: float = 1.0,
    ) -> None:
        """Build the store; ``start`` must run (after the schema exists) before use.

        Args:
            db: The core's database (the memory tables are part of its schema).
            tenant_id: Stamped on every row; reads never cross tenants.
            embedder: Vector search is on when set; keyword search is always on.
            keyword: The keyword index; default: the one for the database's dialect.
            depth: Candidates each retriever contributes to fusion (at least ``k``).
            rrf_k, keyword_weight, vector_weight: Reciprocal rank fusion parameters.
        """
        self._db = db
        self._tenant = tenant_id
        self._keyword = keyword or keyword_index_for(db)
        self._semantic = SemanticIndex(db, embedder, tenant_id=tenant_id) if embedder is not None else None
        self._depth = depth
        self._rrf_k = rrf_k
        self._weights = (keyword_weight, vector_weight)
        self._started = False

    @property
    def embedder(self) -> Embedder | None:
        return self._semantic.embedder if self._semantic is not None else None

    async def start(self) -> None:
        """Create the keyword index and load the vectors (idempotent)."""
        if self._started:
            return
        async with self._db.transaction() as conn:
            await self._keyword.setup(conn)
        if self._semantic is not None:
            await self._semantic.start()
        self._started = True

    async def wait_indexed(self) -> None:
        """Wait until every memory has its vector; returns at once without an embedder.

        Bound it with ``asyncio.timeout``: while the embedder keeps failing, it waits.
        """
        if self._semantic is not None:
            await self._semantic.drain()

    async def aclose(self) -> None:
        self._started = False
        if self._semantic is not None:
            await self._semantic.aclose()

    # Writes ----------------------------------------------------------------------------------------

    async def add(
        self,
        text: str,
        metadata: Mapping[str, Any] | None = None,
        *,
        author: str,
        scope: Scope = "shared",
        tags: Iterable[str] = (),
        source_conversation_id: str | None = None,
        source_message_id: str | None = None,
    ) -> str:
        """Store one memory and return its id.

        Args:
            text: What to remember (up to 100k characters).
            metadata: A JSON object kept with it.
            author: The agent writing it.
            scope: ``shared`` (every agent of the tenant) or ``agent`` (only ``author``).
            tags: Labels for filtering (``search(tags=...)`` needs all given tags).
            source_conversation_id, source_message_id: Provenance, when it came from a conversation.

        Raises:
            ValidationFailed, InvalidAgentId: a bad field (named in the error).
        """
        item = NewMemory(
            text=text,
            author=author,
            scope=scope,
            tags=check_tags(tags),
            metadata=check_metadata(metadata),
            source_conversation_id=source_conversation_id,
            source_message_id=source_message_id,
        )
        return (await self.add_many([item]))[0]

    async def add_many(self, items: Sequence[NewMemory]) -> builtins.list[str]:
        """Store several memories in one transaction (one embedding batch); returns their ids."""
        now = time.time()
        batch = [
            Memory(
                id=new_id("mem"),
                text=check_text(item.text),
                author=validate_agent_id(item.author, field="author"),
                scope=check_scope(item.scope),
                tags=check_tags(item.tags),
                metadata=check_metadata(item.metadata),
                source_conversation_id=item.source_conversation_id,
                source_message_id=item.source_message_id,
                created_at=now,
                updated_at=now,
                tenant_id=self._tenant,
            )
            for item in items
        ]
        if not batch:
            return []
        semantic = self._semantic
        vectors = await semantic.embed_or_defer([m.text for m in batch]) if semantic is not None else None
        async with self._db.transaction() as conn:
            await conn.execute(sa.insert(memories), [memory_row(m) for m in batch])
            await self._write_tags(conn, batch)
            if semantic is not None and vectors is not None:
                await semantic.write(conn, batch, vectors)
            await self._keyword.add(conn, [(m.id, m.text) for m in batch])
        if semantic is not None:
            semantic.committed(batch, vectors)
        return [m.id for m in batch]

    async def update(
        self,
        memory_id: str,
        *,
        agent_id: str,
        text: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        scope: Scope | None = None,
    ) -> Memory:
        """Change a memory the caller can see; fields left as None keep their value.

        Raises:
            MemoryNotFound: no such memory visible to ``agent_id``.
            Conflict: someone other than the author tried to change the scope.
        """
        old = await self.get(memory_id, agent_id=agent_id)
        new = replace(
            old,
            text=old.text if text is None else check_text(text),
            tags=old.tags if tags is None else check_tags(tags),
            metadata=old.metadata if metadata is None else check_metadata(metadata),
            scope=old.scope if scope is None else check_scope(scope),
            updated_at=time.time(),
        )
        if new.scope != old.scope and agent_id != old.author:
            raise Conflict(f"only the author {old.author!r} may change the scope of {memory_id!r}", field="scope")
        semantic = self._semantic
        reembed = semantic is not None and new.text != old.text
        vectors = await semantic.embed_or_defer([new.text]) if semantic is not None and reembed else None
        async with self._db.transaction() as conn:
            await conn.execute(sa.update(memories).where(memories.c.id == memory_id).values(**memory_row(new)))
            await conn.execute(sa.delete(memory_tags).where(memory_tags.c.memory_id == memory_id))
            await self._write_tags(conn, [new])
            if new.text != old.text:
                await self._keyword.remove(conn, [memory_id])
                await self._keyword.add(conn, [(memory_id, new.text)])
            if semantic is not None and reembed:
                await conn.execute(sa.delete(memory_vectors).where(memory_vectors.c.memory_id == memory_id))
                if vectors is not None:
                    await semantic.write(conn, [new], vectors)
        if semantic is not None:
            if reembed:
                semantic.committed([new], vectors)
            else:
                semantic.refresh(new)
        return new

    async def delete(self, memory_id: str, *, agent_id: str) -> Memory:
        """Remove a memory the caller can see; returns what was removed.

        Raises:
            MemoryNotFound: no such memory visible to ``agent_id``.
        """
        old = await self.get(memory_id, agent_id=agent_id)
        async with self._db.transaction() as conn:
            await self._keyword.remove(conn, [memory_id])
            await conn.execute(sa.delete(memory_tags).where(memory_tags.c.memory_id == memory_id))
            await conn.execute(sa.delete(memory_vectors).where(memory_vectors.c.memory_id == memory_id))
            await conn.execute(sa.delete(memories).where(memories.c.id == memory_id))
        if self._semantic is not None:
            self._semantic.forget(memory_id)
        return old

    async def _write_tags(self, conn: AsyncConnection, batch: Sequence[Memory]) -> None:
        rows = [{"memory_id": m.id, "tag": t, "tenant_id": m.tenant_id} for m in batch for t in m.tags]
        if rows:
            await conn.execute(sa.insert(memory_tags), rows)

    # Reads -----------------------------------------------------------------------------------------

    def _visible(self, where: SearchFilter) -> sa.ColumnElement[bool]:
        m = memories
        clauses: builtins.list[sa.ColumnElement[bool]] = [
            m.c.tenant_id == self._tenant,
            sa.or_(m.c.scope == "shared", m.c.author == where.agent_id),
        ]
        if where.author is not None:
            clauses.append(m.c.author == where.author)
        if where.scope is not None:
            clauses.append(m.c.scope == where.scope)
        if where.since is not None:
            clauses.append(m.c.created_at >= where.since)
        if where.until is not None:
            clauses.append(m.c.created_at < where.until)
        for tag in where.tags:
            clauses.append(sa.exists().where(memory_tags.c.memory_id == m.c.id, memory_tags.c.tag == tag))
        return sa.and_(*clauses)

    @staticmethod
    def _filter(
        agent_id: str,
        author: str | None = None,
        scope: Scope | None = None,
        tags: Iterable[str] | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> SearchFilter:
        return SearchFilter(
            agent_id=validate_agent_id(agent_id),
            author=None if author is None else validate_agent_id(author, field="author"),
            scope=None if scope is None else check_scope(scope),
            tags=check_tags(tags),
            since=check_time(since, "since"),
            until=check_time(until, "until"),
        )

    async def get(self, memory_id: str, *, agent_id: str) -> Memory:
        """One memory, if ``agent_id`` may see it.

        Raises:
            MemoryNotFound: it does not exist or is another agent's private memory.
        """
        where = self._filter(agent_id)
        if not isinstance(memory_id, str) or not 0 < len(memory_id) <= 64:
            raise MemoryNotFound(f"no memory {str(memory_id)[:80]!r}", field="memory_id")
        async with self._db.read() as conn:
            query = sa.select(memories).where(memories.c.id == memory_id, self._visible(where))
            row = (await conn.execute(query)).first()
        if row is None:
            raise MemoryNotFound(f"no memory {memory_id!r} visible to agent {agent_id!r}", field="memory_id")
        return row_memory(row)

    async def list(
        self,
        *,
        agent_id: str,
        author: str | None = None,
        scope: Scope | None = None,
        tags: Iterable[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        before: str | None = None,
    ) -> builtins.list[Memory]:
        """Visible memories, newest first; page with ``before`` = the last id of the previous page."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_LIST:
            raise ValidationFailed(f"limit must be between 1 and {_MAX_LIST}", field="limit")
        query = sa.select(memories).where(self._visible(self._filter(agent_id, author, scope, tags, since, until)))
        if before is not None:
            # Ids are time-ordered only to the millisecond, so the order is (created_at, id).
            at = sa.select(memories.c.created_at).where(memories.c.id == before).scalar_subquery()
            query = query.where(
                sa.or_(memories.c.created_at < at, sa.and_(memories.c.created_at == at, memories.c.id < before))
            )
        async with self._db.read() as conn:
            order = (memories.c.created_at.desc(), memories.c.id.desc())
            rows = await conn.execute(query.order_by(*order).limit(limit))
            return [row_memory(r) for r in rows]

    async def search(
        self,
        query: str,
        k: int = 5,
        *,
        agent_id: str,
        author: str | None = None,
        scope: Scope | None = None,
        tags: Iterable[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        mode: SearchMode = "hybrid",
    ) -> builtins.list[MemoryHit]:
        """The ``k`` memories most relevant to ``query`` that ``agent_id`` may see, best first.

        Args:
            query: Free text.
            k: Results wanted (1-100).
            agent_id: The caller: shared memories and its own private ones are searched.
            author, scope, tags, since, until: Optional filters (tags: all must be present;
                ``since <= created_at < until`` in epoch seconds).
            mode: ``hybrid`` (default; keyword-only without an embedder), ``keyword`` or ``vector``.

        Raises:
            ValidationFailed: a bad argument, or ``mode="vector"`` without an embedder.
        """
        if not isinstance(query, str) or not query.strip():
            raise ValidationFailed("query must be a non-empty string", field="query")
        k = check_k(k)
        mode = check_mode(mode)
        if mode == "vector" and self._semantic is None:
            raise ValidationFailed(
                "vector search needs an embedder: set memory_embedder to 'minilm' or 'openai:<model>'",
                field="mode",
            )
        where = self._filter(agent_id, author, scope, tags, since, until)
        depth = max(self._depth, k)
        keyword_job = self._keyword_search(query, where, depth) if mode != "vector" else _nothing()
        vector_job = (
            self._semantic.search(query, where, depth)
            if self._semantic is not None and mode != "keyword"
            else _nothing()
        )
        keyword_hits, vector_hits = await asyncio.gather(keyword_job, vector_job)
        if mode == "keyword":
            fused = keyword_hits[:k]
        elif mode == "vector":
            fused = vector_hits[:k]
        else:
            rankings = [
                Ranking(ids=[mid for mid, _ in keyword_hits], weight=self._weights[0]),
                Ranking(ids=[mid for mid, _ in vector_hits], weight=self._weights[1]),
            ]
            fused = reciprocal_rank_fusion(rankings, k=self._rrf_k)[:k]
        return await self._hits(fused, keyword_hits, vector_hits)

    async def _keyword_search(self, query: str, where: SearchFilter, depth: int) -> Hits:
        terms = query_terms(query)
        if not terms:
            return []
        async with self._db.read() as conn:
            return await self._keyword.search(conn, terms, self._visible(where), depth)

    async def _hits(
        self, fused: Sequence[tuple[str, float]], keyword_hits: Hits, vector_hits: Hits
    ) -> builtins.list[MemoryHit]:
        if not fused:
            return []
        async with self._db.read() as conn:
            rows = await conn.execute(sa.select(memories).where(memories.c.id.in_([mid for mid, _ in fused])))
            found = {row.id: row_memory(row) for row in rows}
        keyword_rank = {mid: rank for rank, (mid, _) in enumerate(keyword_hits, start=1)}
        vector_rank = {mid: rank for rank, (mid, _) in enumerate(vector_hits, start=1)}
        similarity = dict(vector_hits)
        return [
            MemoryHit(
                memory=found[mid],
                score=score,
                keyword_rank=keyword_rank.get(mid),
                vector_rank=vector_rank.get(mid),
                similarity=similarity.get(mid),
            )
            for mid, score in fused
            if mid in found  # deleted between ranking and loading
        ]

    async def stats(self) -> MemoryStats:
        """Counts per scope and author, and the state of the indexes."""
        query = (
            sa.select(memories.c.author, memories.c.scope, sa.func.count().label("n"))
            .where(memories.c.tenant_id == self._tenant)
            .group_by(memories.c.author, memories.c.scope)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        by_author: dict[str, int] = {}
        shared = private = 0
        for row in rows:
            by_author[row.author] = by_author.get(row.author, 0) + row.n
            if row.scope == "agent":
                private += row.n
            else:
                shared += row.n
        semantic = self._semantic
        return MemoryStats(
            total=shared + private,
            shared=shared,
            private=private,
            by_author=dict(sorted(by_author.items())),
            embedder=semantic.embedder.name if semantic is not None else "none",
            dimension=semantic.dimension if semantic is not None else None,
            vectors=len(semantic) if semantic is not None else 0,
            pending_vectors=len(semantic.pending) if semantic is not None else 0,
            keyword_index=self._keyword.name,
            last_error=semantic.last_error if semantic is not None else None,
        )


async def _nothing() -> Hits:
    return []
