"""``SQLiteWriter``: the connection that makes Penguin's hot-path writes to a SQLite file.

aiosqlite runs every cursor, statement and commit as its own trip to its thread (eight for a
turn's append), and each trip is a cross-thread wake-up on the event loop. The writer instead
holds one synchronous SQLAlchemy connection to the same file and runs a whole transaction at
once: on the calling thread for small writes that must not wait (``run``), or in its own thread
for batches and for waiting out another process (``submit``). ``Database.write`` picks, and its
asyncio lock guarantees only one transaction uses the connection at a time.

The connection never sleeps inside SQLite: its ``busy_timeout`` is 0, so a write that finds
another process holding the database fails at once instead of blocking the event loop, and is
retried from the writer thread with backoff for up to ``BUSY_TIMEOUT_S``. Nor does it checkpoint
the WAL (copying it into the database and syncing, several milliseconds): its automatic
checkpoint is off, and every ``CHECKPOINT_EVERY`` transactions ``Database`` runs one in the
writer thread, on a connection of its own, while it holds the write lock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

T = TypeVar("T")
log = logging.getLogger(__name__)

#: How long a write waits for another process's lock before it fails (as ``busy_timeout`` does).
BUSY_TIMEOUT_S = 5.0
#: Transactions between two WAL checkpoints (SQLite's own default is about 1000 pages).
CHECKPOINT_EVERY = 500
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


def is_busy(exc: OperationalError) -> bool:
    """True when SQLite refused the write because another connection holds the database."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED)
    return "database is locked" in str(exc.orig)


def _pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


class SQLiteWriter:
    """One synchronous connection to a SQLite file, and the thread that may run it.

    Args:
        url: the database's URL (any SQLite driver; the writer uses the standard ``sqlite3``).
    """

    def __init__(self, url: sa.URL) -> None:
        self._engine = sa.create_engine(url.set(drivername="sqlite"), connect_args={"check_same_thread": False})
        event.listen(self._engine, "connect", _pragmas)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="penguin-sqlite-writer")
        self._connection: sa.Connection | None = None
        self._path = url.database or ""
        self._since_checkpoint = 0

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in one committed transaction on the calling thread.

        Raises:
            OperationalError: among others when another process holds the database
                (``is_busy``); nothing was written then.
        """
        conn = self._connection
        if conn is None:
            conn = self._connection = self._engine.connect()
        try:
            with conn.begin():
                result = work(conn)
        except BaseException:
            if conn.invalidated or conn.closed:  # a broken connection is replaced on the next write
                self._connection = None
            raise
        self._since_checkpoint += 1
        return result

    def checkpoint_due(self) -> bool:
        """True once every ``CHECKPOINT_EVERY`` transactions (then counting starts again)."""
        if self._since_checkpoint < CHECKPOINT_EVERY:
            return False
        self._since_checkpoint = 0
        return True

    async def checkpoint(self) -> None:
        """Copy the WAL into the database in the writer thread (the caller holds the write lock).

        With no write in progress the passive checkpoint can copy everything, so the next write
        starts the WAL over; a checkpoint that ran beside writes would never catch up with them.
        A failure loses nothing (the WAL keeps every commit) and is only logged.
        """
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._checkpoint)
        except sqlite3.Error as exc:
            log.warning("penguin storage: WAL checkpoint failed: %s", exc)

    def _checkpoint(self) -> None:
        with sqlite3.connect(self._path, timeout=BUSY_TIMEOUT_S) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def run_waiting(self, work: Callable[[sa.Connection], T]) -> T:
        """``run``, retrying while another process holds the database (for the writer thread)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        delay = 0.001
        while True:
            try:
                return self.run(work)
            except OperationalError as exc:
                if not is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def submit(self, work: Callable[[sa.Connection], T]) -> asyncio.Future[T]:
        """Start ``run_waiting(work)`` in the writer thread."""
        return asyncio.get_running_loop().run_in_executor(self._thread, self.run_waiting, work)

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            conn.close()
        self._engine.dispose()
