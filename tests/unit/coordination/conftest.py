"""Coordination fixtures: a core on SQLite; tests of what coordination persists (roles, cursors,
routes) take ``database_url`` (SQLite and PostgreSQL, from tests/conftest.py) themselves; the
storage paths are covered on both backends by the bus tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from penguin import PenguinCore


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        yield c
