"""The async database: engine construction, SQLite tuning, schema creation.

One ``Database`` per ``PenguinCore``. SQLite runs in WAL mode with ``synchronous=NORMAL`` (durable
across process crashes, the standard setting for WAL); PostgreSQL needs nothing special. Services
use only SQLAlchemy Core constructs so the same code runs on both.

Writes on SQLite take turns through one in-process lock: SQLite admits one writer at a time and
makes any other sleep-poll for its lock (``busy_timeout``, in steps of milliseconds), which under
concurrency cost several milliseconds a turn; waiting on an asyncio lock costs microseconds.
Hot-path writes use ``write``: on a SQLite file it runs the whole transaction in one trip to a
dedicated writer thread, where aiosqlite makes every cursor, statement and commit its own trip
(eight for a turn's append, measured in ``benchmarks/``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from penguin.storage.schema import SCHEMA_VERSION, metadata, schema_info

T = TypeVar("T")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """Owns the SQLAlchemy async engine."""

    def __init__(self, url: str) -> None:
        self.url = url
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
        #: A sync engine on the same SQLite file and the one thread it runs in, for ``write``.
        self._sync_engine: sa.Engine | None = None
        self._writer: ThreadPoolExecutor | None = None
        #: The writer thread's connection, opened on its first write and kept (a pool checkout
        #: and check-in per write cost a quarter of a small transaction).
        self._sync_connection: sa.Connection | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self._write_lock = asyncio.Lock()
            database = self.engine.url.database
            if database and database != ":memory:" and "mode=memory" not in url:
                self._sync_engine = sa.create_engine(
                    self.engine.url.set(drivername="sqlite"), connect_args={"check_same_thread": False}
                )
                event.listen(self._sync_engine, "connect", _sqlite_pragmas)
                self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="penguin-sqlite-writer")

    async def create_schema(self) -> None:
        # The memory tables register on ``metadata`` when their module is imported; importing it
        # here rather than at the top avoids a cycle (penguin.memory builds on this module).
        import penguin.memory.schema  # noqa: F401

        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            row = (await conn.execute(sa.select(schema_info.c.version))).first()
            if row is None:
                await conn.execute(sa.insert(schema_info).values(version=SCHEMA_VERSION))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction, committed on success."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.begin() as conn:
            yield conn

    async def write(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work`` in one transaction, commit, and return its result.

        ``work`` gets a synchronous SQLAlchemy ``Connection`` (Core statements only, so it runs on
        every dialect): on a SQLite file it runs in the writer thread in one trip; elsewhere on the
        async engine through ``run_sync``. Once called, the transaction runs to its end even if the
        caller is cancelled, and the cancellation is raised only after it committed (a failed
        transaction raises its own error instead): a caller that sees ``CancelledError`` knows the
        write is durable and can keep its memory in step.
        """
        lock = self._write_lock
        if lock is None or self._writer is None:
            return await _finish(asyncio.ensure_future(self._write_async(work)))
        if lock.locked():
            return await _finish(asyncio.ensure_future(self._write_queued(lock, work)))
        # The lock is free, so acquire() returns without suspending: no cancellation can land
        # between here and the start of the job, which ``_finish`` then sees to its end.
        await lock.acquire()
        try:
            return await _finish(self._start_sync(work))
        finally:
            lock.release()

    async def _write_queued(self, lock: asyncio.Lock, work: Callable[[sa.Connection], T]) -> T:
        async with lock:
            return await self._start_sync(work)

    def _start_sync(self, work: Callable[[sa.Connection], T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._writer, self._write_sync, work)

    async def _write_async(self, work: Callable[[sa.Connection], T]) -> T:
        async with self.transaction() as conn:
            return await conn.run_sync(work)

    def _write_sync(self, work: Callable[[sa.Connection], T]) -> T:
        conn = self._sync_connection
        if conn is None:
            if self._sync_engine is None:  # only called when the writer exists, which needs the engine
                raise RuntimeError("the SQLite writer thread has no engine")
            conn = self._sync_connection = self._sync_engine.connect()
        try:
            with conn.begin():
                return work(conn)
        except BaseException:
            if conn.invalidated or conn.closed:  # a broken connection is replaced on the next write
                self._sync_connection = None
            raise

    def _close_sync(self) -> None:
        conn, self._sync_connection = self._sync_connection, None
        if conn is not None:
            conn.close()
        if self._sync_engine is not None:
            self._sync_engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.get_running_loop().run_in_executor(writer, self._close_sync)
            writer.shutdown(wait=True)
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
