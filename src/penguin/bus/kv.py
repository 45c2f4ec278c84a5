"""``KVStore``: small JSON settings in the shared ``kv`` table, cached and written behind.

Rooms, role assignments, round-robin cursors, routing rules and per-agent usage are tiny,
read on every call and changed now and then. They live in memory (the process owns them, as it
owns the bus sequence) and every change is written through the group committer, so a burst of
round-robin picks costs one transaction, not one each. ``commit`` makes changes durable before
a caller is told they happened (``assign_role``, ``create_room``).

The ``kv`` table has no tenant column, so the stored key is ``<tenant>/<key>``.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from penguin.bus._commit import GroupCommit
from penguin.storage.database import Database
from penguin.storage.schema import kv as kv_t

# Built once: building a statement per write (usage is upserted after every turn) cost more
# than executing it.
_UPDATE = (
    sa.update(kv_t)
    .where(kv_t.c.namespace == sa.bindparam("b_namespace"), kv_t.c.key == sa.bindparam("b_key"))
    .values(value=sa.bindparam("b_value"))
)
_INSERT = sa.insert(kv_t)


class KVStore:
    """Namespaced JSON values of one tenant."""

    def __init__(self, db: Database, writer: GroupCommit, *, tenant_id: str) -> None:
        self._db = db
        self._writer = writer
        self._prefix = f"{tenant_id}/"

    async def load(self, namespace: str) -> dict[str, Any]:
        """Every value of ``namespace`` for this tenant, by key."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                sa.select(kv_t.c.key, kv_t.c.value).where(
                    kv_t.c.namespace == namespace, kv_t.c.key.startswith(self._prefix, autoescape=True)
                )
            )
            return {key[len(self._prefix):]: orjson.loads(value) for key, value in rows}

    def put(self, namespace: str, key: str, value: Any) -> None:
        """Upsert one value (durable at the next commit)."""
        stored = self._prefix + key
        text = orjson.dumps(value, default=str).decode()

        statements = self._writer.statements

        def upsert(conn: sa.Connection) -> None:
            # Update-then-insert keeps to portable SQL (no dialect ON CONFLICT); the committer runs
            # one batch at a time, so nothing races between the two statements.
            if not statements.execute(conn, _UPDATE, {"b_namespace": namespace, "b_key": stored, "b_value": text}):
                statements.execute(conn, _INSERT, {"namespace": namespace, "key": stored, "value": text})

        self._writer.run(upsert)

    def delete(self, namespace: str, key: str) -> None:
        stored = self._prefix + key

        def remove(conn: sa.Connection) -> None:
            conn.execute(sa.delete(kv_t).where(kv_t.c.namespace == namespace, kv_t.c.key == stored))

        self._writer.run(remove)

    async def commit(self) -> None:
        await self._writer.commit()
