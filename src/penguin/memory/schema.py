"""The memory tables, registered on the shared ``penguin.storage.schema.metadata``.

They live in the same database as conversations and agents so that the same migrations make them
and one backup holds everything. Portable types only: tags and metadata are JSON text, times are
float epoch seconds and vectors are raw little-endian float32 bytes. The keyword index is not a
table here: SQLite's FTS5 virtual table and PostgreSQL's GIN expression index need dialect DDL,
which the baseline migration issues (``penguin.memory.keyword`` re-creates it at startup if it was
dropped, and refills it when it is out of step with the table).
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row

from penguin.memory.records import Memory, check_scope
from penguin.storage.schema import metadata

memories = sa.Table(
    "memories",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("tags", sa.Text, nullable=False, default="[]"),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("source_conversation_id", sa.String(64), nullable=True),
    sa.Column("source_message_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_memories_visibility", "tenant_id", "scope", "author"),
    sa.Index("ix_memories_created", "tenant_id", "created_at"),
)

#: One row per (memory, tag), so tag filters are an indexed ``EXISTS`` on every database.
memory_tags = sa.Table(
    "memory_tags",
    metadata,
    sa.Column("memory_id", sa.String(64), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Index("ix_memory_tags_tag", "tenant_id", "tag"),
)

#: The vector of each memory under one embedder; switching embedders re-embeds in the background.
memory_vectors = sa.Table(
    "memory_vectors",
    metadata,
    sa.Column("memory_id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    #: The embedder that produced it (``minilm``, ``openai:text-embedding-3-small``, ...).
    sa.Column("embedder", sa.String(200), nullable=False),
    sa.Column("dimension", sa.Integer, nullable=False),
    #: ``dimension`` little-endian float32 values, L2-normalised.
    sa.Column("vector", sa.LargeBinary, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)


def row_memory(row: Row[Any]) -> Memory:
    """A ``Memory`` from a ``memories`` row."""
    return Memory(
        id=row.id,
        text=row.text,
        author=row.author,
        scope=check_scope(row.scope),
        tags=tuple(orjson.loads(row.tags)),
        metadata=orjson.loads(row.metadata),
        source_conversation_id=row.source_conversation_id,
        source_message_id=row.source_message_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tenant_id=row.tenant_id,
    )


def memory_row(m: Memory) -> dict[str, Any]:
    """The ``memories`` row of a ``Memory``."""
    return {
        "id": m.id,
        "tenant_id": m.tenant_id,
        "author": m.author,
        "scope": m.scope,
        "text": m.text,
        "tags": orjson.dumps(list(m.tags)).decode(),
        "metadata": orjson.dumps(dict(m.metadata)).decode(),
        "source_conversation_id": m.source_conversation_id,
        "source_message_id": m.source_message_id,
        "created_at": m.created_at,
        "updated_at": m.updated_at,
    }
