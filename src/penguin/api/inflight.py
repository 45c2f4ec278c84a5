"""``TurnTracker``: owns every turn the API started, so none is lost to a disconnect or a shutdown.

A turn started by a request runs in its own task, owned here rather than by the request: a
client that disconnects (or a WebSocket that closes) does not cancel the turn it already sent,
so the accepted message is answered and recorded either way. On shutdown ``drain`` refuses new
turns, waits for the running ones up to a grace period, then cancels the rest; the engine records
a cancelled turn in its conversation, so the message is still not lost.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from penguin.api.errors import ServerShuttingDown

T = TypeVar("T")
log = logging.getLogger("penguin.api")


class TrackerState(enum.Enum):
    OPEN = "open"
    DRAINING = "draining"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainReport:
    """What ``drain`` did: turns that finished within the grace period and turns it cancelled."""

    finished: int
    cancelled: int


class TurnTracker:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.state = TrackerState.OPEN

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, work: Coroutine[Any, Any, T], *, name: str = "penguin-turn") -> asyncio.Task[T]:
        """Run ``work`` in a task owned by the tracker.

        Raises:
            ServerShuttingDown: ``drain`` has begun; no new turn is accepted.
        """
        if self.state is not TrackerState.OPEN:
            work.close()
            raise ServerShuttingDown("the server is shutting down and accepts no new turns; retry on restart")
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` as an owned task and wait for it; cancelling the caller does not cancel it."""
        return await asyncio.shield(self.start(work))

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        # Mark the outcome as retrieved: a caller that went away must not produce "never retrieved"
        # noise; failures were already delivered to (or recorded for) the caller by the turn itself.
        if not task.cancelled():
            exc = task.exception()
            if exc is not None:
                log.debug("turn task %s ended with %r", task.get_name(), exc)

    async def drain(self, grace: float) -> DrainReport:
        """Stop accepting turns, wait up to ``grace`` seconds for running ones, cancel the rest."""
        self.state = TrackerState.DRAINING
        pending = set(self._tasks)
        finished = 0
        if pending:
            done, pending = await asyncio.wait(pending, timeout=grace)
            finished = len(done)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        self.state = TrackerState.CLOSED
        if pending:
            log.warning("shutdown: cancelled %d turn(s) still running after %.1fs", len(pending), grace)
        return DrainReport(finished=finished, cancelled=len(pending))
