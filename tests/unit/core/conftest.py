"""Core tests run against both storage backends: embedded SQLite and the PostgreSQL on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from penguin import PenguinCore


@pytest.fixture
async def core(tmp_path: Path, database_url: str) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as c:
        yield c
