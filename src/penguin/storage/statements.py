"""``DriverStatements``: hot-path Core statements compiled once per dialect, run as driver SQL.

``Connection.execute`` does a compiled-cache lookup, builds an execution context and processes
every bound parameter on every call: about as much CPU as SQLite spends inserting the rows. The
few statements that run on every turn or bus batch (message inserts, the conversation bump, the
bus tables' inserts, key-value upserts) are instead compiled once per dialect and run on the
driver's own cursor (``exec_driver_sql`` still built an execution context and a result per
call), inside the transaction the ``Connection`` holds, with parameters laid out in the compiled order where the dialect
is positional (SQLite, asyncpg) and by name otherwise. The SQL is still SQLAlchemy's, so it stays
portable; only statements whose values need no type processing (strings, numbers, JSON already
encoded to text) may go this way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

Params = Mapping[str, Any]
_Compiled = tuple[str, tuple[str, ...] | None]


class DriverStatements:
    """A cache of compiled statements; one per owner (a store, a committer), none shared globally."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[sa.Executable, str], _Compiled] = {}

    def compiled(self, conn: sa.Connection, statement: sa.Executable) -> _Compiled:
        """The statement's SQL for ``conn``'s dialect and, if positional, its parameter order."""
        dialect = conn.dialect
        key = (statement, dialect.name)
        found = self._compiled.get(key)
        if found is None:
            compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
            order = tuple(compiled.positiontup or ()) if dialect.positional else None
            found = self._compiled[key] = (str(compiled), order)
        return found

    def execute(self, conn: sa.Connection, statement: sa.Executable, params: Params) -> int:
        """Run ``statement`` once with ``params`` (by name); return the rows it affected."""
        sql, order = self.compiled(conn, statement)
        bound: tuple[Any, ...] | dict[str, Any] = tuple(params[k] for k in order) if order is not None else dict(params)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, bound)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def execute_many(self, conn: sa.Connection, statement: sa.Executable, rows: Sequence[Params]) -> None:
        """Run ``statement`` for each of ``rows`` in one ``executemany``."""
        if not rows:
            return
        sql, order = self.compiled(conn, statement)
        if order is not None:
            _executemany(conn, sql, [tuple(row[k] for k in order) for row in rows])
        else:
            _executemany(conn, sql, [dict(row) for row in rows])

    def execute_tuples(self, conn: sa.Connection, table: sa.Table, statement: sa.Executable,
                       rows: Sequence[tuple[Any, ...]]) -> None:
        """Run an ``INSERT`` of ``table`` for rows given as tuples in the table's column order."""
        if not rows:
            return
        sql, order = self.compiled(conn, statement)
        names = [c.key for c in table.columns]
        if order is not None and list(order) == names:
            _executemany(conn, sql, list(rows))
        elif order is not None:
            index = {name: n for n, name in enumerate(names)}
            _executemany(conn, sql, [tuple(r[index[k]] for k in order) for r in rows])
        else:
            _executemany(conn, sql, [dict(zip(names, r, strict=True)) for r in rows])


def _executemany(conn: sa.Connection, sql: str, params: Sequence[Any]) -> None:
    """``executemany`` on the DBAPI cursor of ``conn`` (inside the transaction it holds)."""
    cursor = conn.connection.cursor()
    try:
        cursor.executemany(sql, params)
    finally:
        cursor.close()


__all__ = ["DriverStatements"]
