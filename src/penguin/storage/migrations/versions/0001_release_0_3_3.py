"""Release 0.3.3's schema: the baseline every later revision builds on.

It creates only what is missing, so it serves every database made before migrations:

- empty: creates every table and index, and the keyword index of memories;
- made by 0.3.3 (``penguin_schema`` 1, no ``alembic_version``): finds everything, changes nothing;
- made by a development build before commit 49ef1d6, whose ``agents`` table is keyed by
  ``agent_id`` alone (a second tenant's agent of the same name broke it): re-keys ``agents`` by
  ``(tenant_id, agent_id)``, keeping every row, and creates any table that build did not have yet.

The tables are written out here as 0.3.3 defined them, not imported from ``penguin.storage.schema``,
which moves on with later revisions. The keyword index is dialect DDL (``metadata`` cannot
describe it), the same statements 0.3.3 issued at startup.

Revision ID: 0001_release_0_3_3
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_release_0_3_3"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    found = _Found(frozenset(sa.inspect(op.get_bind()).get_table_names()))
    if found.missing("penguin_schema"):
        op.create_table("penguin_schema", sa.Column("version", sa.Integer, primary_key=True))
    if found.missing("agents"):
        op.create_table(
            "agents",
            sa.Column("tenant_id", sa.String(64), primary_key=True),
            sa.Column("agent_id", sa.String(64), primary_key=True),
            sa.Column("spec", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
    else:
        _key_agents_by_tenant()
    _conversation_tables(found)
    _bus_tables(found)
    _memory_tables(found)
    _keyword_index()


def _conversation_tables(found: _Found) -> None:
    if found.missing("conversations"):
        op.create_table(
            "conversations",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("agent_id", sa.String(64), nullable=False),
            sa.Column("title", sa.String(200), nullable=False),
            sa.Column("parent_id", sa.String(64), nullable=True),
            sa.Column("checkpoint_id", sa.String(64), nullable=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("run_mode", sa.String(16), nullable=False),
            sa.Column("last_seq", sa.Integer, nullable=False),
            sa.Column("metadata", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
    found.index("ix_conversations_agent", "conversations", ["agent_id", "updated_at"])
    if found.missing("messages"):
        op.create_table(
            "messages",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("conversation_id", sa.String(64), nullable=False),
            sa.Column("seq", sa.Integer, nullable=False),
            sa.Column("agent_id", sa.String(64), nullable=False),
            sa.Column("sender", sa.String(80), nullable=False),
            sa.Column("recipient_id", sa.String(80), nullable=True),
            sa.Column("role", sa.String(16), nullable=False),
            sa.Column("message_type", sa.String(32), nullable=False),
            sa.Column("channel", sa.String(80), nullable=True),
            sa.Column("content", sa.Text, nullable=False),
            sa.Column("tool_calls", sa.Text, nullable=True),
            sa.Column("tool_call_id", sa.String(128), nullable=True),
            sa.Column("name", sa.String(128), nullable=True),
            sa.Column("usage", sa.Text, nullable=True),
            sa.Column("turn_id", sa.String(64), nullable=True),
            sa.Column("metadata", sa.Text, nullable=True),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        )
    if found.missing("checkpoints"):
        op.create_table(
            "checkpoints",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("conversation_id", sa.String(64), nullable=False),
            sa.Column("agent_id", sa.String(64), nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("seq", sa.Integer, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
        )
    found.index("ix_checkpoints_conversation_id", "checkpoints", ["conversation_id"])
    if found.missing("tasks"):
        op.create_table(
            "tasks",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("agent_id", sa.String(64), nullable=False),
            sa.Column("conversation_id", sa.String(64), nullable=True),
            sa.Column("prompt", sa.Text, nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("progress", sa.Text, nullable=False),
            sa.Column("result", sa.Text, nullable=True),
            sa.Column("error", sa.Text, nullable=True),
            sa.Column("options", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
    found.index("ix_tasks_agent_id", "tasks", ["agent_id"])


def _bus_tables(found: _Found) -> None:
    if found.missing("kv"):
        op.create_table(
            "kv",
            sa.Column("namespace", sa.String(64), primary_key=True),
            sa.Column("key", sa.String(200), primary_key=True),
            sa.Column("value", sa.Text, nullable=False),
        )
    if found.missing("envelopes"):
        op.create_table(
            "envelopes",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("sender", sa.String(140), nullable=False),
            sa.Column("recipient", sa.String(140), nullable=True),
            sa.Column("channel", sa.String(80), nullable=True),
            sa.Column("message_type", sa.String(32), nullable=False),
            sa.Column("content", sa.Text, nullable=False),
            sa.Column("metadata", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("correlation_id", sa.String(64), nullable=True),
            sa.Column("causation_id", sa.String(64), nullable=True),
        )
    found.index("ix_envelopes_channel_seq", "envelopes", ["channel", "seq"])
    found.index("ix_envelopes_recipient_seq", "envelopes", ["recipient", "seq"])
    if found.missing("receipts"):
        op.create_table(
            "receipts",
            sa.Column("message_id", sa.String(64), primary_key=True),
            sa.Column("recipient", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("sender", sa.String(140), nullable=False),
            sa.Column("addressed_to", sa.String(140), nullable=True),
            sa.Column("channel", sa.String(80), nullable=True),
            sa.Column("message_type", sa.String(32), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("reason", sa.Text, nullable=True),
            sa.Column("reply_id", sa.String(64), nullable=True),
            sa.Column("conversation_id", sa.String(64), nullable=True),
            sa.Column("turn_id", sa.String(64), nullable=True),
            sa.Column("seq", sa.BigInteger, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
    found.index("ix_receipts_sender", "receipts", ["tenant_id", "sender", "seq"])
    found.index("ix_receipts_status", "receipts", ["tenant_id", "status", "seq"])


def _memory_tables(found: _Found) -> None:
    if found.missing("memories"):
        op.create_table(
            "memories",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("author", sa.String(64), nullable=False),
            sa.Column("scope", sa.String(16), nullable=False),
            sa.Column("text", sa.Text, nullable=False),
            sa.Column("tags", sa.Text, nullable=False),
            sa.Column("metadata", sa.Text, nullable=False),
            sa.Column("source_conversation_id", sa.String(64), nullable=True),
            sa.Column("source_message_id", sa.String(64), nullable=True),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
    found.index("ix_memories_visibility", "memories", ["tenant_id", "scope", "author"])
    found.index("ix_memories_created", "memories", ["tenant_id", "created_at"])
    if found.missing("memory_tags"):
        op.create_table(
            "memory_tags",
            sa.Column("memory_id", sa.String(64), primary_key=True),
            sa.Column("tag", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
        )
    found.index("ix_memory_tags_tag", "memory_tags", ["tenant_id", "tag"])
    if found.missing("memory_vectors"):
        op.create_table(
            "memory_vectors",
            sa.Column("memory_id", sa.String(64), primary_key=True),
            sa.Column("tenant_id", sa.String(64), nullable=False),
            sa.Column("embedder", sa.String(200), nullable=False),
            sa.Column("dimension", sa.Integer, nullable=False),
            sa.Column("vector", sa.LargeBinary, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )


def _keyword_index() -> None:
    """The full-text index ``penguin.memory.keyword`` searches (it refills it when out of step)."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts "
            "USING fts5(memory_id UNINDEXED, text, tokenize='porter unicode61')"
        )
    elif dialect == "postgresql":
        op.execute("CREATE INDEX IF NOT EXISTS ix_memories_fts ON memories USING GIN (to_tsvector('english', text))")


def _key_agents_by_tenant() -> None:
    """Key a pre-49ef1d6 ``agents`` table by ``(tenant_id, agent_id)``; rows keep their values."""
    inspector = sa.inspect(op.get_bind())
    if inspector.get_pk_constraint("agents")["constrained_columns"] != ["agent_id"]:
        return
    # That build also indexed tenant_id (``index=True``); the composite key's index replaces it.
    has_tenant_index = "ix_agents_tenant_id" in {ix["name"] for ix in inspector.get_indexes("agents")}
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a primary key: batch mode copies the rows into a new table. The old
        # shape is given rather than reflected, without its key, so only the new key remains.
        old = sa.Table(
            "agents",
            sa.MetaData(),
            sa.Column("agent_id", sa.String(64), nullable=False),
            sa.Column("tenant_id", sa.String(64), nullable=False, index=has_tenant_index),
            sa.Column("spec", sa.Text, nullable=False),
            sa.Column("created_at", sa.Float, nullable=False),
            sa.Column("updated_at", sa.Float, nullable=False),
        )
        with op.batch_alter_table("agents", copy_from=old, recreate="always") as batch:
            if has_tenant_index:
                batch.drop_index("ix_agents_tenant_id")
            batch.create_primary_key("agents_pkey", ["tenant_id", "agent_id"])
        return
    if has_tenant_index:
        op.drop_index("ix_agents_tenant_id", table_name="agents")
    op.drop_constraint(inspector.get_pk_constraint("agents")["name"] or "agents_pkey", "agents", type_="primary")
    op.create_primary_key("agents_pkey", "agents", ["tenant_id", "agent_id"])


class _Found:
    """The tables the database had before this revision ran.

    A plain class: Alembic loads revision files outside ``sys.modules``, where ``@dataclass`` fails.
    """

    def __init__(self, tables: frozenset[str]) -> None:
        self.tables = tables

    def missing(self, table: str) -> bool:
        return table not in self.tables

    def index(self, name: str, table: str, columns: list[str]) -> None:
        """Create an index unless the table was already there with it."""
        if table in self.tables and name in {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes(table)}:
            return
        op.create_index(name, table, columns)


def downgrade() -> None:
    raise NotImplementedError("Penguin does not downgrade a database; restore the backup taken before upgrading")
