"""Test-wide safety: real model calls are impossible unless a test points a provider at 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

# A provider URL nobody listens on: a test that forgets to use the scripted model or a fake server
# fails fast with a connection error instead of reaching the internet.
for _key in (
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "PENGUIN_API_KEY",
    "PENGUIN_MODEL",
    "PENGUIN_DATA_DIR",
    "PENGUIN_DATABASE_URL",
    "PENGUIN_CONFIG",
):
    os.environ.pop(_key, None)
os.environ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
os.environ["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:9"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The model cache belongs to the machine (~/.cache/penguin/models, or the developer's
# PENGUIN_MODELS_DIR). Tests get a private one for the session, so nothing a test assembles lands
# there; the tests that load the real bundled model ask for the machine's (`machine_models_dir`),
# so it is assembled once per machine, not once per run.
_MACHINE_MODELS_DIR = os.environ.pop("PENGUIN_MODELS_DIR", None)


@pytest.fixture(scope="session", autouse=True)
def _private_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ["PENGUIN_MODELS_DIR"] = str(tmp_path_factory.mktemp("models"))
    yield
    os.environ.pop("PENGUIN_MODELS_DIR", None)


@pytest.fixture(scope="session")
def machine_models_dir() -> Path:
    """The machine's model cache, shared with `penguin chat` (the real bundled model is ~490 MB)."""
    from penguin.config import Settings

    return Settings(models_dir=_MACHINE_MODELS_DIR).resolved_models_dir()


PG_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_admin(sql: str) -> None:
    """Run one statement on the PostgreSQL server, in a thread of its own (callers may be in a loop)."""

    async def run() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One PostgreSQL database for the session (creating one per test costs about a second)."""
    name = f"penguin_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    yield f"{PG_DSN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Tests that take this run on embedded SQLite and on the PostgreSQL on loopback (emptied first)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}"
        return
    url: str = request.getfixturevalue("pg_database")
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # DELETE, not TRUNCATE: on tables this small it is about ten times faster.
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        if rows:
            await conn.execute("; ".join(f'DELETE FROM "{r["tablename"]}"' for r in rows))
    finally:
        await conn.close()
    yield url


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[object]:
    from penguin import PenguinCore

    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        yield c



@pytest.fixture
def new_pg_database() -> Iterator[str]:
    """The URL of a new PostgreSQL database without any table, dropped after the test."""
    name = f"penguin_test_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_DSN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without any table: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}"
    url: str = request.getfixturevalue("new_pg_database")
    return url
