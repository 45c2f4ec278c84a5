"""A single slot shared by many agents, handed out round-robin by agent.

The local model decodes one request at a time. Waiting requests are grouped by ``agent_id`` and the
agents take turns, so one agent with a backlog of calls cannot starve the others; within an agent
requests keep their arrival order.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque


class FairQueue:
    """One holder at a time; waiters are served round-robin by agent, then in arrival order.

    Thread-safe and not bound to one event loop: the slot is released from the decode thread
    when a generation ends, and each waiter is woken on its own loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._holder: str | None = None
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        #: Agents with waiters, in the order they get their next turn.
        self._turns: deque[str] = deque()

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._waiting.values())

    async def acquire(self, agent: str) -> None:
        with self._lock:
            if not self._busy:
                self._busy, self._holder = True, agent
                return
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if agent not in self._waiting:
                self._waiting[agent] = deque()
                self._turns.append(agent)
            self._waiting[agent].append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            with self._lock:
                queue = self._waiting.get(agent)
                if queue is not None and fut in queue:
                    queue.remove(fut)
                    if not queue:
                        del self._waiting[agent]
                        self._turns.remove(agent)
                    raise
            # Already granted: hand the slot on. A grant still in flight sees the cancelled
            # future and hands it on itself (``_grant``), so exactly one side releases.
            if fut.done() and not fut.cancelled():
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            if len(self._turns) > 1 and self._turns[0] == self._holder:
                self._turns.rotate(-1)  # the agent that just ran goes behind the others
            if not self._turns:
                self._busy, self._holder = False, None
                return
            agent = self._turns.popleft()
            queue = self._waiting[agent]
            fut = queue.popleft()
            if queue:
                self._turns.append(agent)
            else:
                del self._waiting[agent]
            self._holder = agent
        try:
            fut.get_loop().call_soon_threadsafe(self._grant, fut)
        except RuntimeError:  # the waiter's loop is closed: nobody will take the slot
            self.release()

    def _grant(self, fut: asyncio.Future[None]) -> None:
        if fut.cancelled():
            self.release()
        else:
            fut.set_result(None)
