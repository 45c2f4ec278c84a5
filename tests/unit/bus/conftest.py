"""Fixtures for the bus tests, on both storage backends (``database_url`` comes from tests/conftest.py):
a bare bus, and a started core."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bus_helpers import Parts

from penguin import PenguinCore


@pytest.fixture
async def parts(database_url: str) -> AsyncIterator[Parts]:
    built = await Parts(database_url).start()
    yield built
    await built.stop()


@pytest.fixture
async def core(tmp_path: Path, database_url: str) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as c:
        yield c
