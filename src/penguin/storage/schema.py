"""The database schema as SQLAlchemy Core tables, portable between SQLite and PostgreSQL.

Timestamps are float epoch seconds and structured values are JSON text (encoded with orjson by
the services), so no service needs dialect-specific types or SQL. Every table carries
``tenant_id``.

These tables describe the schema; migrations (``penguin/storage/migrations``) make it. Change a
table here and add a revision in the same commit: a test compares a migrated database with
``metadata`` on SQLite and PostgreSQL and fails until both agree.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: The schema number, for people and for release 0.3.3's successors: the number of the newest
#: revision applied (``0001_release_0_3_3`` → 1); 0.3.3 wrote 1. See ``penguin.storage.migrate``.
schema_info = sa.Table(
    "penguin_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)

agents = sa.Table(
    "agents",
    metadata,
    sa.Column("tenant_id", sa.String(64), primary_key=True),
    sa.Column("agent_id", sa.String(64), primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

conversations = sa.Table(
    "conversations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("title", sa.String(200), nullable=False, default=""),
    sa.Column("parent_id", sa.String(64), nullable=True),
    sa.Column("checkpoint_id", sa.String(64), nullable=True),
    sa.Column("kind", sa.String(16), nullable=False, default="main"),
    sa.Column("run_mode", sa.String(16), nullable=False, default="chat"),
    sa.Column("last_seq", sa.Integer, nullable=False, default=0),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Index("ix_conversations_agent", "agent_id", "updated_at"),
)

messages = sa.Table(
    "messages",
    metadata,
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

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("agent_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("agent_id", sa.String(64), nullable=False, index=True),
    sa.Column("conversation_id", sa.String(64), nullable=True),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress", sa.Text, nullable=False, default="{}"),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("options", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

kv = sa.Table(
    "kv",
    metadata,
    sa.Column("namespace", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Message bus (penguin.bus): every published envelope, and the delivery receipts of the inbox.
envelopes = sa.Table(
    "envelopes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False, unique=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("sender", sa.String(140), nullable=False),
    sa.Column("recipient", sa.String(140), nullable=True),
    sa.Column("channel", sa.String(80), nullable=True),
    sa.Column("message_type", sa.String(32), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("correlation_id", sa.String(64), nullable=True),
    sa.Column("causation_id", sa.String(64), nullable=True),
    sa.Index("ix_envelopes_channel_seq", "channel", "seq"),
    sa.Index("ix_envelopes_recipient_seq", "recipient", "seq"),
)

receipts = sa.Table(
    "receipts",
    metadata,
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
    sa.Index("ix_receipts_sender", "tenant_id", "sender", "seq"),
    sa.Index("ix_receipts_status", "tenant_id", "status", "seq"),
)
