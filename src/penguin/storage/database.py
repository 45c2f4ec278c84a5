"""The async database: engine construction, SQLite tuning, opening the schema.

One ``Database`` per ``PenguinCore``. Its schema is made and upgraded only by migrations
(``penguin.storage.migrate``): ``create_schema`` creates it in an empty database, upgrades an
older one, and refuses one that a newer Penguin made. SQLite runs in WAL mode with ``synchronous=NORMAL`` (durable
across process crashes, the standard setting for WAL); PostgreSQL needs nothing special. Services
use only SQLAlchemy Core constructs so the same code runs on both.

Writes on SQLite take turns through one in-process lock: SQLite admits one writer at a time and
makes any other sleep-poll for its lock (``busy_timeout``, in steps of milliseconds), which under
concurrency cost several milliseconds a turn; waiting on an asyncio lock costs microseconds.
Hot-path writes use ``write``, which on a SQLite file runs the whole transaction at once through
``SQLiteWriter`` instead of one aiosqlite thread trip per cursor, statement and commit (eight for
a turn's append; measured in ``benchmarks/``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from penguin.storage.migrate import Migrations, SchemaStatus
from penguin.storage.sqlite_writer import SQLiteWriter, is_busy

T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """Owns the SQLAlchemy async engine.

    Args:
        url: SQLAlchemy async URL (``sqlite+aiosqlite:///...``, ``postgresql+asyncpg://...``).
        auto_migrate: upgrade an older schema when it is opened (else ``create_schema`` raises
            ``MigrationRequired``).
        migrations: the revisions to open the schema with (default: the package's).
    """

    def __init__(self, url: str, *, auto_migrate: bool = True, migrations: Migrations | None = None) -> None:
        self.url = url
        self.auto_migrate = auto_migrate
        self.migrations = migrations if migrations is not None else Migrations()
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        #: Serializes this process's SQLite write transactions (None on other databases).
        self._write_lock: asyncio.Lock | None = None
        #: Runs ``write`` transactions on a SQLite file (None for ``:memory:`` and other databases).
        self._sqlite_writer: SQLiteWriter | None = None
        #: WAL checkpoints in flight (held so they are not collected, awaited on close).
        self._background: set[asyncio.Future[None]] = set()
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self._write_lock = asyncio.Lock()
            database = self.engine.url.database
            if database and database != ":memory:" and "mode=memory" not in url:
                self._sqlite_writer = SQLiteWriter(self.engine.url)

    async def create_schema(self) -> SchemaStatus:
        """Make the schema ready: create it, upgrade it (unless ``auto_migrate`` is off), or refuse.

        Costs a few milliseconds when the schema is already current.

        Raises:
            SchemaTooNew: a newer Penguin made the database (it is left untouched).
            SchemaUnrecognized: Penguin's tables without a schema version.
            MigrationRequired: the schema is older and ``auto_migrate`` is off.
            MigrationFailed: the upgrade failed and was rolled back.
        """
        return await self.migrations.open(self.engine, auto_migrate=self.auto_migrate)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction, committed on success."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    async def write(self, work: Callable[[sa.Connection], T], *, inline: bool = False) -> T:
        """Run ``work`` in one transaction, commit, and return its result.

        ``work`` gets a synchronous SQLAlchemy ``Connection`` and should only execute Core
        statements (so it runs on every dialect, and may run again after SQLite reported another
        process busy). On a SQLite file it runs through ``SQLiteWriter``: with ``inline``, right
        here on the event loop (for small writes on a turn's critical path: a thread hand-off
        costs more than they do), else in the writer thread. Elsewhere it runs on the async
        engine through ``run_sync``.

        Once called, the transaction runs to its end even if the caller is cancelled, and the
        cancellation is raised only after it committed (a failed transaction raises its own
        error instead): a caller that sees ``CancelledError`` knows the write is durable and can
        keep its memory in step.
        """
        lock, writer = self._write_lock, self._sqlite_writer
        if lock is None or writer is None:
            return await _finish(asyncio.ensure_future(self._write_async(work)))
        if lock.locked():
            return await _finish(asyncio.ensure_future(self._write_queued(lock, writer, work, inline)))
        # The lock is free, so acquire() returns without suspending: no cancellation can land
        # between here and the start of the transaction, which then runs to its end.
        await lock.acquire()
        try:
            if inline:
                try:
                    return writer.run(work)
                except OperationalError as exc:
                    if not is_busy(exc):
                        raise
                    # Another process holds the database: wait for it in the writer thread.
            return await _finish(writer.submit(work))
        finally:
            lock.release()
            self._checkpoint_if_due(lock, writer)

    async def _write_queued(
        self, lock: asyncio.Lock, writer: SQLiteWriter, work: Callable[[sa.Connection], T], inline: bool
    ) -> T:
        try:
            async with lock:
                if inline:
                    try:
                        return writer.run(work)
                    except OperationalError as exc:
                        if not is_busy(exc):
                            raise
                return await writer.submit(work)
        finally:
            self._checkpoint_if_due(lock, writer)

    async def query(self, work: Callable[[sa.Connection], T]) -> T:
        """Run a small read (``work`` executes Core ``SELECT``s on a sync connection) and return its result.

        On a SQLite file whose writer connection is idle the read runs right here on it (one
        indexed ``SELECT`` costs less than the async engine's thread trips); otherwise, and on
        other databases, it runs on the async engine through ``run_sync``.
        """
        lock, writer = self._write_lock, self._sqlite_writer
        if lock is not None and writer is not None and not lock.locked():
            await lock.acquire()  # free: returns without suspending
            try:
                return writer.run(work)
            except OperationalError as exc:
                if not is_busy(exc):
                    raise
            finally:
                lock.release()
        async with self.read() as conn:
            return await conn.run_sync(work)

    def _checkpoint_if_due(self, lock: asyncio.Lock, writer: SQLiteWriter) -> None:
        if writer.checkpoint_due():
            task = asyncio.ensure_future(self._checkpoint(lock, writer))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    @staticmethod
    async def _checkpoint(lock: asyncio.Lock, writer: SQLiteWriter) -> None:
        # Writers wait on the asyncio lock meanwhile (the event loop does not).
        async with lock:
            await writer.checkpoint()

    async def _write_async(self, work: Callable[[sa.Connection], T]) -> T:
        async with self.transaction() as conn:
            return await conn.run_sync(work)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def aclose(self) -> None:
        if self._background:
            await asyncio.wait(self._background)
        writer, self._sqlite_writer = self._sqlite_writer, None
        if writer is not None:
            await writer.aclose()
        await self.engine.dispose()


async def _finish(job: asyncio.Future[T]) -> T:
    """Await a started transaction to its end; a cancellation is raised only once it is over."""
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        while not job.done():
            try:
                await asyncio.wait((job,))
            except asyncio.CancelledError:
                continue
        job.result()
        raise
