"""Per-agent execution state: one writer per conversation, pause/resume gates, cancellation.

Each agent gets an ``AgentRuntime`` on first use. Turns of one conversation run strictly one at a
time in arrival order (``asyncio.Lock`` wakes waiters first-in first-out); different
conversations and different agents run concurrently. A paused agent's turns wait at the gate
(holding their place in line) until it is resumed. ``cancel`` stops the in-flight turn at its next
await point; its caller gets ``TurnCancelled``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from penguin.errors import TurnCancelled

T = TypeVar("T")


class AgentRuntime:
    __slots__ = ("_cancelled", "_gate", "_inflight", "_locks", "_users", "_waiting", "agent_id")

    def __init__(self, agent_id: str, *, paused: bool = False) -> None:
        self.agent_id = agent_id
        self._locks: dict[str, asyncio.Lock] = {}
        #: Turns holding or waiting for each conversation's lock; the lock is dropped at zero.
        self._users: dict[str, int] = {}
        self._gate = asyncio.Event()
        if not paused:
            self._gate.set()
        self._inflight: dict[str, asyncio.Task[object]] = {}
        self._cancelled: set[asyncio.Task[object]] = set()
        self._waiting = 0

    @property
    def paused(self) -> bool:
        return not self._gate.is_set()

    @property
    def busy(self) -> bool:
        return bool(self._inflight) or self._waiting > 0

    @property
    def queued(self) -> int:
        """Turns waiting for their conversation's writer slot."""
        return self._waiting

    def status(self) -> dict[str, object]:
        return {
            "paused": self.paused,
            "running": sorted(self._inflight),
            "queued": self._waiting,
        }

    def pause(self) -> None:
        self._gate.clear()

    def resume(self) -> None:
        self._gate.set()

    async def run(self, conversation_id: str, work: Callable[[], Awaitable[T]]) -> tuple[T, float]:
        """Run ``work`` as this conversation's next turn; return its result and ms spent queued.

        Raises:
            TurnCancelled: ``cancel`` stopped the turn.
        """
        lock = self._locks.get(conversation_id)
        if lock is None:
            lock = self._locks[conversation_id] = asyncio.Lock()
        self._users[conversation_id] = self._users.get(conversation_id, 0) + 1
        queued_at = time.perf_counter()
        self._waiting += 1
        try:
            await lock.acquire()
        except BaseException:
            self._release_user(conversation_id)
            raise
        finally:
            self._waiting -= 1
        try:
            await self._gate.wait()
            queued_ms = (time.perf_counter() - queued_at) * 1000
            task: asyncio.Task[T] = asyncio.ensure_future(work())
            self._inflight[conversation_id] = task
            try:
                await asyncio.wait((task,))
            except asyncio.CancelledError:
                task.cancel()
                await asyncio.wait((task,))
                raise
            finally:
                self._inflight.pop(conversation_id, None)
            if task in self._cancelled:
                self._cancelled.discard(task)
                if task.cancelled():
                    raise TurnCancelled(
                        f"the turn of agent {self.agent_id!r} in {conversation_id!r} was cancelled",
                        agent_id=self.agent_id,
                        conversation_id=conversation_id,
                    )
            return task.result(), queued_ms
        finally:
            lock.release()
            self._release_user(conversation_id)

    def _release_user(self, conversation_id: str) -> None:
        left = self._users[conversation_id] - 1
        if left:
            self._users[conversation_id] = left
        else:
            del self._users[conversation_id]
            self._locks.pop(conversation_id, None)

    def cancel(self, conversation_id: str | None = None) -> list[str]:
        """Cancel in-flight turns (of one conversation, or all); returns the conversations hit."""
        hit = []
        for conv_id, task in list(self._inflight.items()):
            if conversation_id is None or conv_id == conversation_id:
                self._cancelled.add(task)
                task.cancel()
                hit.append(conv_id)
        return hit


class Runtimes:
    """The ``AgentRuntime`` of every agent that has run, created on demand."""

    def __init__(self) -> None:
        self._runtimes: dict[str, AgentRuntime] = {}

    def get(self, agent_id: str, *, paused: bool = False) -> AgentRuntime:
        runtime = self._runtimes.get(agent_id)
        if runtime is None:
            runtime = self._runtimes[agent_id] = AgentRuntime(agent_id, paused=paused)
        return runtime

    def find(self, agent_id: str) -> AgentRuntime | None:
        return self._runtimes.get(agent_id)

    def drop(self, agent_id: str) -> None:
        runtime = self._runtimes.pop(agent_id, None)
        if runtime is not None:
            runtime.cancel()

    def all(self) -> list[AgentRuntime]:
        return list(self._runtimes.values())
