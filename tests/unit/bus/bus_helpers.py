"""Helpers of the bus tests: a bare bus on a database, and a scripted model body that waits."""

from __future__ import annotations

import asyncio

from penguin.bus import GroupCommit, MemoryBus
from penguin.models.base import ModelRequest
from penguin.models.scripted import last_user_text
from penguin.storage.database import Database


class Gate:
    """A scripted model body that blocks every call until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.seen: list[str] = []

    async def __call__(self, request: ModelRequest) -> str:
        text = last_user_text(request)
        self.seen.append(text)
        self.started.set()
        await self.release.wait()
        return f"done: {text}"


class Parts:
    """A database, committer and bus without a core, closed in order."""

    def __init__(self, url: str, *, ring_size: int = 10_000) -> None:
        self.db = Database(url)
        self.writer = GroupCommit(self.db)
        self.bus = MemoryBus(self.db, self.writer, ring_size=ring_size)

    async def start(self) -> Parts:
        await self.db.create_schema()
        self.writer.start()
        await self.bus.start()
        return self

    async def stop(self) -> None:
        await self.bus.aclose()
        await self.writer.aclose()
        await self.db.aclose()
