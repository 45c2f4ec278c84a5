"""The vector half of memory search: an embedder, the in-memory index, and keeping them in step.

``MemoryStore`` owns one of these when an embedder is configured. Vectors are persisted in
``memory_vectors`` (tagged with the embedder's name) and mirrored in a ``VectorIndex``, loaded
once at start. Embedding never blocks a write: when the embedder fails, or memories were written
under another embedder, they wait in ``pending`` and a background task embeds them in batches,
retrying with backoff; search meanwhile covers what is indexed and keyword search covers the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from penguin.errors import PenguinError
from penguin.memory.embedders import Embedder
from penguin.memory.records import Memory, SearchFilter
from penguin.memory.schema import memories, memory_vectors, row_memory
from penguin.memory.vectors import Vector, VectorIndex
from penguin.storage.database import Database

log = logging.getLogger(__name__)

_BATCH = 64
_MAX_BACKOFF = 60.0


class SemanticIndex:
    """Embeds memories and queries, persists vectors and searches them."""

    def __init__(self, db: Database, embedder: Embedder, *, tenant_id: str) -> None:
        self._db = db
        self.embedder = embedder
        self._tenant = tenant_id
        self._index: VectorIndex | None = None
        #: Memories without a vector under the current embedder, by id.
        self.pending: dict[str, Memory] = {}
        #: The last embedder failure; cleared by the next success.
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._running = False

    @property
    def dimension(self) -> int | None:
        return self._index.dimension if self._index is not None else self.embedder.dimension

    def __len__(self) -> int:
        return len(self._index) if self._index is not None else 0

    async def start(self) -> None:
        """Load every stored vector of this embedder; queue the memories that have none."""
        v = memory_vectors
        query = (
            sa.select(memories, v.c.vector)
            .select_from(
                memories.outerjoin(v, sa.and_(v.c.memory_id == memories.c.id, v.c.embedder == self.embedder.name))
            )
            .where(memories.c.tenant_id == self._tenant)
        )
        async with self._db.read() as conn:
            result = await conn.stream(query)
            async for batch in result.partitions(1000):
                for row in batch:
                    memory = row_memory(row)
                    if row.vector is None:
                        self.pending[memory.id] = memory
                    else:
                        self._put(memory, np.frombuffer(row.vector, dtype="<f4").astype(np.float32))
        self._running = True
        self._kick()

    async def aclose(self) -> None:
        self._running = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.embedder.aclose()

    # Writes ----------------------------------------------------------------------------------------

    async def embed_or_defer(self, texts: Sequence[str]) -> Vector | None:
        """Vectors for ``texts``, or None (the failure recorded in ``last_error``) if the embedder fails."""
        try:
            vectors = await self.embedder.embed(texts)
        except PenguinError as exc:
            self.last_error = exc.detail
            log.warning("memory embedder %s failed; vectors deferred: %s", self.embedder.name, exc.detail)
            return None
        self.last_error = None
        return vectors

    async def write(self, conn: AsyncConnection, batch: Sequence[Memory], vectors: Vector) -> None:
        """Persist the vectors of ``batch`` inside the caller's transaction."""
        now = time.time()
        await conn.execute(
            sa.insert(memory_vectors),
            [
                {
                    "memory_id": m.id,
                    "tenant_id": m.tenant_id,
                    "embedder": self.embedder.name,
                    "dimension": int(vectors.shape[1]),
                    "vector": vectors[i].astype("<f4").tobytes(),
                    "updated_at": now,
                }
                for i, m in enumerate(batch)
            ],
        )

    def committed(self, batch: Sequence[Memory], vectors: Vector | None) -> None:
        """After the write committed: index the vectors, or queue the batch when there are none."""
        for i, memory in enumerate(batch):
            if vectors is None:
                self.pending[memory.id] = memory
            else:
                self.pending.pop(memory.id, None)
                self._put(memory, vectors[i])
        self._kick()

    def refresh(self, memory: Memory) -> None:
        """Update the filter fields (scope, tags) of a memory whose text did not change."""
        if memory.id in self.pending:
            self.pending[memory.id] = memory
        vector = self._index.vector_of(memory.id) if self._index is not None else None
        if vector is not None:
            self._put(memory, vector)

    def forget(self, memory_id: str) -> None:
        self.pending.pop(memory_id, None)
        if self._index is not None:
            self._index.remove(memory_id)

    def _put(self, memory: Memory, vector: Vector) -> None:
        if self._index is None:
            self._index = VectorIndex(len(vector))
        if len(vector) != self._index.dimension:
            self.pending[memory.id] = memory
            return
        self._index.put(
            memory.id,
            vector,
            author=memory.author,
            private=memory.scope == "agent",
            created_at=memory.created_at,
            tags=memory.tags,
        )

    # Search ----------------------------------------------------------------------------------------

    async def search(self, query: str, where: SearchFilter, limit: int) -> list[tuple[str, float]]:
        """``(memory_id, cosine)`` best first; empty when the query cannot be embedded."""
        vectors = await self.embed_or_defer([query])
        index = self._index
        if vectors is None or index is None or vectors.shape[1] != index.dimension:
            return []
        return await asyncio.to_thread(index.search, vectors[0], limit, where)

    # Background embedding --------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every pending memory has its vector (forever, while the embedder fails)."""
        while self._task is not None:
            await asyncio.shield(self._task)

    def _kick(self) -> None:
        if self._running and self.pending and self._task is None:
            self._task = asyncio.create_task(self._backfill(), name="memory-backfill")

    async def _backfill(self) -> None:
        delay = 1.0
        try:
            while self.pending:
                batch = list(self.pending.values())[:_BATCH]
                vectors = await self.embed_or_defer([m.text for m in batch])
                if vectors is None:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _MAX_BACKOFF)
                    continue
                delay = 1.0
                # Skip memories deleted or rewritten while this batch was being embedded.
                keep = [i for i, m in enumerate(batch) if self.pending.get(m.id) is m]
                if not keep:
                    continue
                batch, vectors = [batch[i] for i in keep], vectors[keep]
                async with self._db.transaction() as conn:
                    ids = [m.id for m in batch]
                    await conn.execute(sa.delete(memory_vectors).where(memory_vectors.c.memory_id.in_(ids)))
                    await self.write(conn, batch, vectors)
                for i, memory in enumerate(batch):
                    if self.pending.get(memory.id) is memory:
                        del self.pending[memory.id]
                        self._put(memory, vectors[i])
        except Exception as exc:  # a database failure: keep the queue, report it, retry on the next write
            self.last_error = f"background embedding stopped: {type(exc).__name__}: {exc}"
            log.exception("memory backfill failed; %d memories still pending", len(self.pending))
        finally:
            self._task = None
