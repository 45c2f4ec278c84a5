"""Keyword search over memories: SQLite FTS5 with bm25, or PostgreSQL full-text search with ts_rank.

This module holds Penguin's one allowed dialect branch (``keyword_index_for``): full-text search
has no portable SQL, so each database gets a small class behind the ``KeywordIndex`` protocol and
the store never sees the difference. Both take the query as a bag of terms joined with OR, ranked
by relevance, because memories are short and a query rarely repeats a memory's exact wording; a
small stop-word list keeps words like "the" from matching every row.

A word that punctuation splits into several tokens (``SUP-1182``, ``db-prod-eu-3``,
``max_inflight_requests``) is searched as a phrase, so an identifier matches itself and not every
memory that shares one of its parts.

SQLite: an FTS5 table (porter stemming) whose rowid is a 63-bit hash of the memory id, so a row is
found and deleted by id without a lookup table and survives ``VACUUM``. A rowid collision (about
one in 10^9 at 100k memories) fails the insert loudly rather than mixing two memories. bm25 costs
about 1.5 us per matching row and FTS5 must rank every match, so two rules keep a search near a
few milliseconds at 100k memories: a term matching more than ``CANDIDATE_BUDGET`` memories is left
out when rarer terms exist (its weight in bm25 is small anyway), and ranking runs on the FTS table
alone, with visibility and filters applied to the best few hundred (widening when filters reject
too many) instead of joining every match.
PostgreSQL: a GIN index on ``to_tsvector('english', text)``; nothing to maintain on writes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from penguin.errors import ValidationFailed
from penguin.memory.schema import memories
from penguin.storage.database import Database

MAX_TERMS = 32
_TERM = re.compile(r"[^\W_]+")
STOP_WORDS = frozenset(  # a word list reads better as text than as 130 quoted strings
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further
    had has have having he her here hers herself him himself his how i if in into is it its
    itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t don ll re ve""".split()  # noqa: SIM905
)


@dataclass(frozen=True, slots=True)
class Term:
    """One search term: a word as typed, and its tokens (several for ``SUP-1182``: a phrase)."""

    word: str
    tokens: tuple[str, ...]


def query_terms(query: str) -> list[Term]:
    """The distinct search terms of a query, lower-cased, stop words removed, at most ``MAX_TERMS``."""
    out: list[Term] = []
    seen: set[tuple[str, ...]] = set()
    for word in query.lower().split():
        tokens = tuple(_TERM.findall(word))
        if not tokens or (len(tokens) == 1 and tokens[0] in STOP_WORDS) or tokens in seen:
            continue
        seen.add(tokens)
        out.append(Term(word=word, tokens=tokens))
        if len(out) == MAX_TERMS:
            break
    return out


class KeywordIndex(Protocol):
    """Full-text ranking of memories, maintained inside the store's write transactions."""

    #: ``fts5`` or ``tsvector``, reported in the store's stats.
    name: str

    async def setup(self, conn: AsyncConnection) -> None:
        """Create the index if missing and bring it in line with the ``memories`` table."""
        ...

    async def add(self, conn: AsyncConnection, rows: Sequence[tuple[str, str]]) -> None:
        """Index new ``(memory_id, text)`` rows."""
        ...

    async def remove(self, conn: AsyncConnection, memory_ids: Sequence[str]) -> None:
        """Drop memories from the index (before their rows are deleted or their text changes)."""
        ...

    async def search(
        self, conn: AsyncConnection, terms: Sequence[Term], where: sa.ColumnElement[bool], limit: int
    ) -> list[tuple[str, float]]:
        """``(memory_id, score)`` of the best ``limit`` memories matching any term and ``where``,
        best first (higher score is better)."""
        ...


def keyword_index_for(db: Database) -> KeywordIndex:
    """The keyword index for the database's dialect.

    Raises:
        ValidationFailed: the database is neither SQLite nor PostgreSQL.
    """
    dialect = db.engine.dialect.name
    if dialect == "sqlite":
        return Fts5Index()
    if dialect == "postgresql":
        return TsvectorIndex()
    raise ValidationFailed(
        f"memory search supports SQLite and PostgreSQL databases, not {dialect!r}; "
        "set database_url to a sqlite+aiosqlite:// or postgresql+asyncpg:// URL",
        field="database_url",
    )


def fts_rowid(memory_id: str) -> int:
    """The FTS5 rowid of a memory: the first 63 bits of its id's BLAKE2b hash."""
    digest = hashlib.blake2b(memory_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF_FFFF_FFFF


_fts = sa.table("memory_fts", sa.column("rowid", sa.Integer), sa.column("memory_id", sa.String))
_BATCH = 1000
#: Matches worth ranking per search (~1.5 us each); see the module docstring.
CANDIDATE_BUDGET = 5_000
_MATCH = sa.text("memory_fts MATCH :match")
_RANK: sa.ColumnClause[float] = sa.literal_column("rank", sa.Float)


class Fts5Index:
    """SQLite FTS5 with porter stemming, ranked by bm25."""

    name = "fts5"

    async def setup(self, conn: AsyncConnection) -> None:
        await conn.execute(
            sa.text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts "
                "USING fts5(memory_id UNINDEXED, text, tokenize='porter unicode61')"
            )
        )
        indexed = (await conn.execute(sa.text("SELECT count(*) FROM memory_fts"))).scalar_one()
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(memories))).scalar_one()
        if indexed == stored:
            return
        # Out of step (the index was dropped, or rows were written by a tool that bypassed the
        # store): rebuild from the table, which is the source of truth.
        await conn.execute(sa.text("DELETE FROM memory_fts"))
        result = await conn.stream(sa.select(memories.c.id, memories.c.text))
        async for batch in result.partitions(_BATCH):
            await self.add(conn, [(row.id, row.text) for row in batch])

    async def add(self, conn: AsyncConnection, rows: Sequence[tuple[str, str]]) -> None:
        if rows:
            await conn.execute(
                sa.text("INSERT INTO memory_fts(rowid, memory_id, text) VALUES (:rowid, :memory_id, :text)"),
                [{"rowid": fts_rowid(mid), "memory_id": mid, "text": text} for mid, text in rows],
            )

    async def remove(self, conn: AsyncConnection, memory_ids: Sequence[str]) -> None:
        if memory_ids:
            await conn.execute(
                sa.text("DELETE FROM memory_fts WHERE rowid = :rowid"),
                [{"rowid": fts_rowid(mid)} for mid in memory_ids],
            )

    async def search(
        self, conn: AsyncConnection, terms: Sequence[Term], where: sa.ColumnElement[bool], limit: int
    ) -> list[tuple[str, float]]:
        if not terms:
            return []
        match = await self._match(conn, [" ".join(term.tokens) for term in terms])
        # Rank on the FTS table alone (a materialised subquery), then join the best few hundred to
        # ``memories`` by primary key and filter. Joining first would make SQLite fetch and filter
        # every match before ranking, several times slower at 100k memories.
        candidates = max(limit * 8, 400)
        ranked = (
            sa.select(_fts.c.memory_id, _RANK.label("rank"))
            .where(_MATCH)
            .order_by(_RANK)
            .limit(candidates)
            .subquery("ranked")
        )
        query = (
            sa.select(memories.c.id, ranked.c.rank)
            .select_from(ranked.join(memories, memories.c.id == ranked.c.memory_id))
            .where(where)
            .order_by(ranked.c.rank)
            .limit(limit)
        )
        # bm25() is lower-is-better; the store's contract is higher-is-better.
        hits = [(row.id, -float(row.rank)) for row in await conn.execute(query, {"match": match})]
        if len(hits) < limit:
            matched = (
                await conn.execute(sa.select(sa.func.count()).select_from(_fts).where(_MATCH), {"match": match})
            ).scalar_one()
            if matched > candidates:  # the filters rejected most of the best: rank the filtered set
                return await self._joined(conn, match, where, limit)
        return hits

    async def _match(self, conn: AsyncConnection, phrases: Sequence[str]) -> str:
        """The MATCH expression: the phrases joined with OR, the too-common ones dropped."""
        if len(phrases) > 1:
            counts = (
                await conn.execute(
                    sa.select(
                        *(
                            sa.text(f"(SELECT count(*) FROM memory_fts WHERE memory_fts MATCH :p{i})")
                            for i in range(len(phrases))
                        )
                    ),
                    {f"p{i}": f'"{phrase}"' for i, phrase in enumerate(phrases)},
                )
            ).one()
            chosen: list[str] = []
            total = 0
            for count, phrase in sorted(zip(counts, phrases, strict=True)):
                if chosen and total + count > CANDIDATE_BUDGET:
                    break
                chosen.append(phrase)
                total += count
            phrases = chosen
        return " OR ".join(f'"{phrase}"' for phrase in phrases)

    async def _joined(
        self, conn: AsyncConnection, match: str, where: sa.ColumnElement[bool], limit: int
    ) -> list[tuple[str, float]]:
        """Rank only the matches that pass ``where`` (for filters that reject most matches)."""
        rank = sa.func.bm25(sa.literal_column("memory_fts"))
        query = (
            sa.select(memories.c.id, rank.label("rank"))
            .select_from(_fts.join(memories, memories.c.id == _fts.c.memory_id))
            .where(_MATCH, where)
            .order_by(rank)
            .limit(limit)
        )
        return [(row.id, -float(row.rank)) for row in await conn.execute(query, {"match": match})]


_ENGLISH: sa.ColumnClause[str] = sa.literal_column("'english'", sa.String)


class TsvectorIndex:
    """PostgreSQL full-text search (``english`` configuration), ranked by ts_rank."""

    name = "tsvector"

    async def setup(self, conn: AsyncConnection) -> None:
        # The expression must match the query's exactly for the planner to use the index.
        await conn.execute(
            sa.text("CREATE INDEX IF NOT EXISTS ix_memories_fts ON memories USING GIN (to_tsvector('english', text))")
        )

    async def add(self, conn: AsyncConnection, rows: Sequence[tuple[str, str]]) -> None:
        return None

    async def remove(self, conn: AsyncConnection, memory_ids: Sequence[str]) -> None:
        return None

    async def search(
        self, conn: AsyncConnection, terms: Sequence[Term], where: sa.ColumnElement[bool], limit: int
    ) -> list[tuple[str, float]]:
        if not terms:
            return []
        vector = sa.func.to_tsvector(_ENGLISH, memories.c.text)
        # PostgreSQL's own parser reads each word (it keeps ``-1182`` in ``SUP-1182`` as one signed
        # number token), so the query is tokenised exactly like the text; words are ORed with ``||``.
        tsquery: sa.ColumnElement[Any] = sa.func.phraseto_tsquery(_ENGLISH, terms[0].word)
        for term in terms[1:]:
            tsquery = tsquery.op("||")(sa.func.phraseto_tsquery(_ENGLISH, term.word))
        rank = sa.func.ts_rank(vector, tsquery)
        query = (
            sa.select(memories.c.id, rank.label("rank"))
            .where(vector.op("@@")(tsquery), where)
            .order_by(rank.desc(), memories.c.id)
            .limit(limit)
        )
        return [(row.id, float(row.rank)) for row in await conn.execute(query)]
