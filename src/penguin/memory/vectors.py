"""Exact vector search over an in-memory float32 matrix, kept in step with the database.

Every memory's vector (L2-normalised, so a dot product is the cosine) is one row of a matrix, with
parallel arrays for what filters need: author, privacy, creation time, liveness. A search is one
matrix-vector product plus masks, about 4.5 ms for 100k x 384 on one core, which beats an
approximate index on both recall and simplicity at this scale. The product runs with one BLAS
thread: it is memory-bound, and OpenBLAS's multi-threaded gemv measured 8 ms against 4.5 ms for
one thread on the 2-core machine (its spinning workers also steal the core the embedder needs).

Searches run in a worker thread while the event loop keeps writing, so the layout is chosen to
make that safe without a lock: rows are only appended (growth copies into a new array and
swaps the reference), deletion flips a liveness flag, and compaction builds fresh arrays. A search
takes references once and reads only rows below the count it saw, so it always sees a consistent
snapshot; an update racing a search yields either the old or the new vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from penguin.memory.records import SearchFilter

Vector = npt.NDArray[np.float32]

_INITIAL_ROWS = 1024
_COMPACT_MIN_DEAD = 1024


@dataclass(frozen=True, slots=True)
class _Arrays:
    """One generation of the index's storage; replaced wholesale on growth or compaction."""

    vectors: npt.NDArray[np.float32]
    alive: npt.NDArray[np.bool_]
    private: npt.NDArray[np.bool_]
    author: npt.NDArray[np.int32]
    created: npt.NDArray[np.float64]


def _allocate(rows: int, dim: int) -> _Arrays:
    return _Arrays(
        vectors=np.zeros((rows, dim), dtype=np.float32),
        alive=np.zeros(rows, dtype=np.bool_),
        private=np.zeros(rows, dtype=np.bool_),
        author=np.zeros(rows, dtype=np.int32),
        created=np.zeros(rows, dtype=np.float64),
    )


class VectorIndex:
    """Memory id → vector, with filtered exact top-k search by cosine similarity."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._arrays = _allocate(_INITIAL_ROWS, dimension)
        self._count = 0
        self._dead = 0
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        self._authors: dict[str, int] = {}
        self._tags: dict[str, set[int]] = {}
        self._row_tags: list[tuple[str, ...]] = []
        # Found once (a few ms); limiting per search then costs about 6 µs.
        self._blas = ThreadpoolController()

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, memory_id: object) -> bool:
        return memory_id in self._row

    def _author_code(self, author: str) -> int:
        code = self._authors.get(author)
        if code is None:
            code = self._authors[author] = len(self._authors)
        return code

    def put(
        self,
        memory_id: str,
        vector: Vector,
        *,
        author: str,
        private: bool,
        created_at: float,
        tags: Sequence[str],
    ) -> None:
        """Insert or replace one memory's vector and filter fields.

        Raises:
            ValueError: the vector's length is not the index's dimension.
        """
        if vector.shape != (self.dimension,):
            raise ValueError(f"vector has shape {vector.shape}, expected ({self.dimension},)")
        row = self._row.get(memory_id)
        if row is None:
            row = self._append_row(memory_id)
        else:
            for tag in self._row_tags[row]:
                self._tags[tag].discard(row)
        arrays = self._arrays
        arrays.vectors[row] = vector
        arrays.private[row] = private
        arrays.author[row] = self._author_code(author)
        arrays.created[row] = created_at
        arrays.alive[row] = True
        self._row_tags[row] = tuple(tags)
        for tag in tags:
            self._tags.setdefault(tag, set()).add(row)

    def _append_row(self, memory_id: str) -> int:
        row = self._count
        if row == len(self._arrays.alive):
            self._arrays = self._copy(max(_INITIAL_ROWS, row * 2), range(row))
        self._ids.append(memory_id)
        self._row_tags.append(())
        self._row[memory_id] = row
        self._count = row + 1
        return row

    def _copy(self, rows: int, keep: Sequence[int] | range) -> _Arrays:
        old, new = self._arrays, _allocate(rows, self.dimension)
        index = np.asarray(keep, dtype=np.int64)
        n = len(index)
        for name in ("vectors", "alive", "private", "author", "created"):
            getattr(new, name)[:n] = getattr(old, name)[index]
        return new

    def vector_of(self, memory_id: str) -> Vector | None:
        """A copy of a memory's vector, or None when it is not indexed."""
        row = self._row.get(memory_id)
        return None if row is None else self._arrays.vectors[row].copy()

    def remove(self, memory_id: str) -> bool:
        """Forget a memory; returns whether it was indexed."""
        row = self._row.pop(memory_id, None)
        if row is None:
            return False
        self._arrays.alive[row] = False
        for tag in self._row_tags[row]:
            self._tags[tag].discard(row)
        self._row_tags[row] = ()
        self._dead += 1
        if self._dead >= _COMPACT_MIN_DEAD and self._dead * 4 >= self._count:
            self._compact()
        return True

    def _compact(self) -> None:
        live = [row for row in range(self._count) if self._arrays.alive[row]]
        ids = [self._ids[row] for row in live]
        row_tags = [self._row_tags[row] for row in live]
        arrays = self._copy(max(_INITIAL_ROWS, len(live) * 2), live)
        tags: dict[str, set[int]] = {}
        for row, row_tag in enumerate(row_tags):
            for tag in row_tag:
                tags.setdefault(tag, set()).add(row)
        # New objects throughout, so a search holding the old ones is unaffected.
        self._arrays, self._ids, self._row_tags, self._tags = arrays, ids, row_tags, tags
        self._row = {mid: row for row, mid in enumerate(ids)}
        self._count, self._dead = len(ids), 0

    def search(self, query: Vector, limit: int, where: SearchFilter) -> list[tuple[str, float]]:
        """``(memory_id, cosine)`` of the ``limit`` most similar visible memories, best first.

        Blocking (a matrix product): call it from a worker thread.
        """
        arrays, ids, count = self._arrays, self._ids, self._count
        if count == 0 or limit <= 0:
            return []
        mask = arrays.alive[:count].copy()
        caller = self._authors.get(where.agent_id, -1)
        mask &= ~arrays.private[:count] | (arrays.author[:count] == caller)
        if where.author is not None:
            mask &= arrays.author[:count] == self._authors.get(where.author, -1)
        if where.scope is not None:
            mask &= arrays.private[:count] == (where.scope == "agent")
        if where.since is not None:
            mask &= arrays.created[:count] >= where.since
        if where.until is not None:
            mask &= arrays.created[:count] < where.until
        for tag in where.tags:
            rows = np.fromiter(self._tags.get(tag, set()).copy(), dtype=np.int64)
            tagged = np.zeros(count, dtype=np.bool_)
            tagged[rows[rows < count]] = True
            mask &= tagged
        candidates = np.flatnonzero(mask)
        if len(candidates) == 0:
            return []
        with self._blas.limit(limits=1, user_api="blas"):
            if len(candidates) * 2 >= count:
                scores = arrays.vectors[:count] @ query
                scores[~mask] = -np.inf
            else:
                scores = np.full(count, -np.inf, dtype=np.float32)
                scores[candidates] = arrays.vectors[candidates] @ query
        limit = min(limit, len(candidates))
        top = np.argpartition(-scores, limit - 1)[:limit]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(ids[row], float(scores[row])) for row in top]
