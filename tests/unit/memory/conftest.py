"""Memory tests: a real ``MemoryStore`` on SQLite and on the PostgreSQL on loopback, and a core.

PostgreSQL gets one database per test session (creating one per test costs a second); tests stay
apart on it through the store's own tenancy: every test writes under a fresh tenant id.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from penguin.memory import MemoryStore
from penguin.storage.database import Database

PG_DSN = os.environ.get("PENGUIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"penguin_memory_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.create_schema()
    yield database
    await database.aclose()


@pytest.fixture
async def store(db: Database, tenant: str) -> AsyncIterator[MemoryStore]:
    """A keyword-only store (no embedder), on both databases, under a fresh tenant."""
    memory = MemoryStore(db, tenant_id=tenant)
    await memory.start()
    yield memory
    await memory.aclose()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[MemoryStore]:
    """A keyword-only store on SQLite only, for tests of input checks."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}")
    await database.create_schema()
    memory = MemoryStore(database, tenant_id="default")
    await memory.start()
    yield memory
    await memory.aclose()
    await database.aclose()
