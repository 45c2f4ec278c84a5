"""``GroupCommit``: write-behind batching of small writes into one transaction per batch.

The bus persists every envelope, the inbox every receipt transition, the coordinator its
cursors: thousands of tiny writes a second. One transaction each would cap throughput at the
database's commit rate, so writers hand rows and operations to this batcher and go on; one
background flusher commits everything pending in a single transaction. A caller that must know
its write is durable (``send_message`` before it returns a receipt) awaits ``commit()``, which
resolves once everything submitted before the call is committed: concurrent senders share one
commit.

Throughput decisions (measured with the W5 benchmark, 100k envelopes):

* The flusher lingers ``linger`` seconds (default 5 ms) after the first pending write before it
  commits, unless someone awaits ``commit()`` or the batch is full: a commit per burst of 100
  publishes cost more loop time than the publishes themselves.
* Rows of registered tables go to the driver's ``executemany`` through an ``INSERT`` compiled
  once per table for the connection's dialect (positional parameters where the dialect is
  positional, as SQLite and asyncpg are; named otherwise). SQLAlchemy's per-row parameter
  processing was most of the flusher's time on the event loop, while the driver's own loop runs
  in its worker thread. The SQL is still SQLAlchemy-generated, so it stays portable.
* Batches are capped at ``max_batch`` items so one flush never holds the loop for long.

Order is kept: inserts of a batch run first (in submission order per table), then operations in
submission order; an operation is taken only once every insert submitted before it is in the
batch, so an update never runs before the row it updates.

Failures: a transient database error (``OperationalError``, e.g. SQLite busy) retries the same
batch with backoff; anything else fails the batch loudly (logged, counted, raised to every
``commit()`` waiter as ``PersistFailed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from penguin.bus.errors import BusClosed, PersistFailed
from penguin.storage.database import Database
from penguin.storage.statements import DriverStatements

log = logging.getLogger(__name__)

Operation = Callable[[sa.Connection], None]
"""A small synchronous write (update, upsert); a batch runs its inserts and operations in one
``Database.write`` (one trip to SQLite's writer thread), which saves an await chain per statement."""
RowBuilder = Callable[[Any], tuple[Any, ...]]
"""Builds one row as a tuple of values in the table's column order."""

_RETRIES = 8
#: Batches up to this many items are written on the event loop (about 0.1 ms), bigger ones in
#: the writer thread.
_INLINE_ITEMS = 32


class GroupCommit:
    """Batches inserts and operations; one flusher task commits them.

    Args:
        db: the database to write to.
        max_batch: items per transaction at most (bigger backlogs take several transactions).
        linger: seconds to gather writes before committing when nobody is waiting.
    """

    def __init__(self, db: Database, *, max_batch: int = 1_000, linger: float = 0.005) -> None:
        self._db = db
        self._max_batch = max_batch
        self._linger = linger
        self._builders: dict[sa.Table, RowBuilder] = {}
        #: Compiled SQL of the tables' INSERTs, and of statements the operations run.
        self.statements = DriverStatements()
        self._insert_of: dict[sa.Table, sa.Insert] = {}
        self._inserts: dict[sa.Table, list[Any]] = {}
        self._ops: list[Operation] = []
        self._pending = 0
        self._submitted = 0
        self._committed = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False
        #: Counters for telemetry.
        self.batches = 0
        self.items = 0
        self.errors = 0

    def register(self, table: sa.Table, build_row: RowBuilder) -> None:
        """Convert items inserted into ``table`` with ``build_row`` at flush time (off the hot path).

        The builder returns a value for every column, in the table's column order; items of
        tables without a builder are mappings of column name to value.
        """
        self._builders[table] = build_row

    def start(self) -> None:
        if self._flusher is None:
            self._closed = False
            self._flusher = asyncio.create_task(self._run(), name="penguin-bus-commit")

    @property
    def pending(self) -> int:
        return self._pending

    def insert(self, table: sa.Table, item: Any) -> None:
        """Queue one row (a mapping, or an item the table's registered builder converts).

        Raises:
            BusClosed: the writer was closed.
        """
        if self._closed:
            raise BusClosed("the message bus is stopped; start the core again before publishing")
        rows = self._inserts.get(table)
        if rows is None:
            rows = self._inserts[table] = []
        rows.append(item)
        # _queued() inlined: this is the per-envelope hot path.
        self._submitted += 1
        self._pending += 1
        if self._pending == 1:
            self._wake.set()
        elif self._pending == self._max_batch:
            self._urgent.set()

    def run(self, op: Operation) -> None:
        """Queue an operation to run inside the next batch's transaction.

        Raises:
            BusClosed: the writer was closed.
        """
        if self._closed:
            raise BusClosed("the message bus is stopped; start the core again before publishing")
        self._ops.append(op)
        self._queued()

    def _queued(self) -> None:
        self._submitted += 1
        self._pending += 1
        if self._pending == 1:
            self._wake.set()
        elif self._pending == self._max_batch:
            self._urgent.set()

    async def commit(self) -> None:
        """Wait until everything submitted before this call is committed.

        Raises:
            PersistFailed: the batch holding those writes could not be committed.
            BusClosed: the writer is not running.
        """
        target = self._submitted
        if self._committed >= target:
            return
        if self._flusher is None:
            raise BusClosed("the bus writer is not running; start the core first")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        self._wake.set()
        self._urgent.set()
        await future

    async def aclose(self) -> None:
        """Commit everything pending, then stop the flusher. Later writes raise ``BusClosed``."""
        self._closed = True
        flusher, self._flusher = self._flusher, None
        if flusher is None:
            return
        self._urgent.set()
        self._wake.set()
        # It drains everything, then returns because we are closed. A failed batch was already
        # logged and reported to its waiters; nothing more can be done at shutdown.
        with contextlib.suppress(PersistFailed):
            await asyncio.shield(flusher)

    async def _drain(self) -> None:
        while self._pending:
            await self._flush_once()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), self._linger)
            self._urgent.clear()
            try:
                await self._drain()
            except PersistFailed:
                if self._closed:
                    raise
                continue  # already logged and reported to waiters; keep serving later writes
            if self._closed and not self._pending:
                return

    def _take(self) -> tuple[list[tuple[sa.Table, list[Any]]], list[Operation], int]:
        """Take up to ``max_batch`` items, inserts first (see the module docstring on order)."""
        budget = self._max_batch
        inserts: list[tuple[sa.Table, list[Any]]] = []
        for table in list(self._inserts):
            rows = self._inserts[table]
            if len(rows) <= budget:
                inserts.append((table, rows))
                del self._inserts[table]
                budget -= len(rows)
            else:
                inserts.append((table, rows[:budget]))
                self._inserts[table] = rows[budget:]
                budget = 0
            if not budget:
                break
        ops: list[Operation] = []
        if budget and self._ops:
            ops, self._ops = self._ops[:budget], self._ops[budget:]
            budget -= len(ops)
        return inserts, ops, self._max_batch - budget

    def _execute(self, conn: sa.Connection, inserts: list[tuple[sa.Table, list[Any]]],
                 ops: list[Operation]) -> None:
        for table, items in inserts:
            statement = self._insert_of.get(table)
            if statement is None:
                statement = self._insert_of[table] = sa.insert(table)
            build = self._builders.get(table)
            if build is None:
                self.statements.execute_many(conn, statement, items)
            else:
                self.statements.execute_tuples(conn, table, statement, [build(i) for i in items])
        _run_all(conn, ops)

    async def _flush_once(self) -> None:
        # Everything submitted so far is covered once the whole backlog is flushed; a partial
        # batch (backlog above max_batch) only advances the mark when the backlog is empty.
        mark = self._submitted
        inserts, ops, taken = self._take()
        delay = 0.01
        for attempt in range(_RETRIES):
            try:
                # One ``Database.write``: on SQLite the whole batch is one transaction (the async
                # engine made every cursor, statement and commit its own thread trip and held the
                # write lock, and the next turn's append, for all of them). A small batch (a few
                # turns' events) runs inline, cheaper than a thread hand-off; a big one goes to
                # the writer thread so it never holds the event loop.
                await self._db.write(lambda conn: self._execute(conn, inserts, ops), inline=taken <= _INLINE_ITEMS)
                break
            except OperationalError as exc:
                if attempt == _RETRIES - 1:
                    self._fail(taken, mark, exc)
                    raise PersistFailed(f"bus writes failed after {_RETRIES} attempts: {exc}") from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except asyncio.CancelledError:
                self._done(taken, mark)  # ``Database.write`` raises a cancellation only once committed
                raise
            except Exception as exc:
                self._fail(taken, mark, exc)
                raise PersistFailed(f"bus writes failed: {type(exc).__name__}: {exc}") from exc
        self._done(taken, mark)

    def _done(self, taken: int, mark: int) -> None:
        self._pending -= taken
        self.batches += 1
        self.items += taken
        if not self._pending:
            self._committed = mark
            self._release(None)

    def _fail(self, taken: int, mark: int, exc: BaseException) -> None:
        self.errors += 1
        self._pending -= taken
        log.error("penguin bus: dropped a batch of %d writes: %s", taken, exc)
        if not self._pending:
            self._committed = mark
        self._release(PersistFailed(f"the database refused a batch of {taken} bus writes: {exc}"))

    def _release(self, error: PersistFailed | None) -> None:
        keep: list[tuple[int, asyncio.Future[None]]] = []
        for target, future in self._waiters:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            elif target <= self._committed:
                future.set_result(None)
            else:
                keep.append((target, future))
        self._waiters = keep


def _run_all(conn: sa.Connection, ops: list[Operation]) -> None:
    for op in ops:
        op(conn)
