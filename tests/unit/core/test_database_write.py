"""``Database.write``: one committed transaction per call, on SQLite without blocking the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from penguin.storage.database import Database
from penguin.storage.schema import kv


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}")
    await database.create_schema()
    yield database
    await database.aclose()


def put(key: str, value: str = "v") -> Callable[[sa.Connection], str]:
    def work(conn: sa.Connection) -> str:
        conn.execute(sa.insert(kv).values(namespace="test", key=key, value=value))
        return key

    return work


async def stored(db: Database) -> list[str]:
    async with db.read() as conn:
        return [r.key for r in await conn.execute(sa.select(kv.c.key).order_by(kv.c.key))]


@pytest.mark.parametrize("inline", [True, False])
async def test_a_write_commits_and_returns_what_the_work_returned(db: Database, inline: bool) -> None:
    assert await db.write(put("a"), inline=inline) == "a"
    assert await stored(db) == ["a"]


async def test_a_failed_write_commits_nothing(db: Database) -> None:
    def half(conn: sa.Connection) -> None:
        conn.execute(sa.insert(kv).values(namespace="test", key="x", value="v"))
        conn.execute(sa.insert(kv).values(namespace="test", key="x", value="duplicate"))

    with pytest.raises(sa.exc.IntegrityError):
        await db.write(half, inline=True)
    assert await stored(db) == []


async def test_concurrent_writes_of_both_kinds_take_turns_without_busy_errors(db: Database) -> None:
    writes = [db.write(put(f"k{i:03d}"), inline=i % 2 == 0) for i in range(60)]

    async def through_transaction(key: str) -> None:
        async with db.transaction() as conn:
            await conn.execute(sa.insert(kv).values(namespace="test", key=key, value="v"))

    await asyncio.gather(*writes, *(through_transaction(f"t{i:03d}") for i in range(20)))
    assert len(await stored(db)) == 80


async def test_another_process_holding_the_database_does_not_block_the_loop(db: Database, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "penguin.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # what a second Penguin process mid-write looks like
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    running = asyncio.create_task(ticker())
    write = asyncio.create_task(db.write(put("late"), inline=True))
    await asyncio.sleep(0.2)
    # The write waits in the writer thread while the loop runs: a write blocking the loop would
    # hold it for the whole busy timeout (5 s), leaving one tick. (Not 40 ticks: a loaded machine
    # may run the loop late.)
    assert not write.done() and ticks >= 3
    other.execute("COMMIT")
    other.close()
    assert await write == "late"
    running.cancel()
    assert await stored(db) == ["late"]


async def test_a_cancelled_caller_sees_the_cancellation_only_after_the_commit(db: Database) -> None:
    gate = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(conn: sa.Connection) -> None:
        conn.execute(sa.insert(kv).values(namespace="test", key="slow", value="v"))
        asyncio.run_coroutine_threadsafe(_set(gate), loop).result()
        conn.execute(sa.select(sa.func.count()).select_from(kv))

    caller = asyncio.create_task(db.write(slow))  # the writer thread: this one can be cancelled mid-way
    await gate.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert await stored(db) == ["slow"]


async def _set(event: asyncio.Event) -> None:
    event.set()


async def test_query_reads_what_was_committed_whether_or_not_a_write_holds_the_lock(db: Database) -> None:
    await db.write(put("a"), inline=True)
    keys = sa.select(kv.c.key).order_by(kv.c.key)
    assert await db.query(lambda conn: list(conn.scalars(keys))) == ["a"]
    async with db.transaction() as conn:  # holds the write lock: the read takes the async engine
        await conn.execute(sa.insert(kv).values(namespace="test", key="b", value="v"))
        assert await db.query(lambda c: list(c.scalars(keys))) == ["a"]  # not committed yet
    assert await db.query(lambda conn: list(conn.scalars(keys))) == ["a", "b"]


async def test_the_wal_is_checkpointed_off_the_loop_so_it_stops_growing(db: Database, tmp_path: Path) -> None:
    from penguin.storage.sqlite_writer import CHECKPOINT_EVERY

    wal = tmp_path / "penguin.db-wal"

    async def write_many(start: int, count: int) -> None:
        for i in range(start, start + count):
            await db.write(put(f"k{i:05d}", "x" * 3000), inline=True)
            if i % 50 == 0:
                await asyncio.sleep(0.001)  # let a due checkpoint take its turn

    await write_many(0, CHECKPOINT_EVERY + 100)
    first = wal.stat().st_size
    await write_many(CHECKPOINT_EVERY + 100, 3 * CHECKPOINT_EVERY)
    # Without checkpoints the WAL would grow with every page written (four times as much data
    # again); with them it starts over and stays the size of one checkpoint interval.
    assert wal.stat().st_size < 1.5 * first
    assert len(await stored(db)) == 4 * CHECKPOINT_EVERY + 100
