"""Test-wide safety: real model calls are impossible unless a test points a provider at 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

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


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[object]:
    from penguin import PenguinCore

    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        yield c
