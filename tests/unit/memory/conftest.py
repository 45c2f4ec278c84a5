"""Memory tests: a real ``MemoryStore`` on SQLite and on the PostgreSQL on loopback, and a core.

``database_url`` (SQLite, and one PostgreSQL database per session emptied before each test) comes
from tests/conftest.py; every test also writes under a fresh tenant id.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from penguin.memory import MemoryStore
from penguin.storage.database import Database


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
