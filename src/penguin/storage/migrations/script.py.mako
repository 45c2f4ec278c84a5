"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Write it for SQLite and PostgreSQL alike: ``op.batch_alter_table`` for anything beyond adding a
table, an index or a nullable column (SQLite rebuilds the table). Run it against both with
``tests/unit/storage/test_migrations.py``; Penguin does not downgrade (restore a backup).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = "${up_revision}"
down_revision = "${down_revision}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    raise NotImplementedError("Penguin does not downgrade a database; restore the backup taken before upgrading")
