"""The Alembic environment: runs the revisions on the connection Penguin hands over.

``penguin.storage.migrate`` puts an open connection, already inside its transaction (and, on
PostgreSQL, under the migration lock), in ``config.attributes["connection"]``; this script never
opens a database of its own. Autogenerate compares against ``penguin.storage.schema.metadata``
(memory tables included) and leaves alone the keyword index, which is dialect DDL that
``metadata`` cannot describe.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from alembic.util import CommandError

import penguin.memory.schema  # noqa: F401  (registers the memory tables on ``metadata``)
from penguin.storage.migrate import include_name
from penguin.storage.schema import metadata


def run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name,
        compare_type=True,
        # SQLite alters most things by copying the table; future revisions must work there too.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise CommandError(
        "Penguin's migrations run on a connection Penguin opens: use `penguin db upgrade` to upgrade a "
        "database and `penguin db revision` to write a revision (see docs/storage.md)"
    )
run(connection)
