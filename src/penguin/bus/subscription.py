"""``Subscription``: one subscriber's bounded queue, replay cursor and async iterator.

A subscription is registered with the bus synchronously, before any replay is read, so the
envelopes it replays (``seq`` up to the bus's last seq at that instant) and the live ones it
queues (every later seq) meet without a gap or an overlap. The queue is bounded: when the
consumer falls behind, the ``drop_oldest`` policy discards the oldest queued envelope (counted in
``dropped``), the ``disconnect`` policy cuts the subscriber off; its iterator then drains what
it already holds and raises ``SubscriberDisconnected`` whose ``resume_seq`` is the place to
subscribe again from. A publisher never waits for a subscriber.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Literal

from penguin.bus.envelope import Envelope
from penguin.bus.errors import SubscriberDisconnected
from penguin.bus.filters import EnvelopeFilter

OverflowPolicy = Literal["drop_oldest", "disconnect"]
ReplayPage = Callable[[EnvelopeFilter, int, int], Awaitable[list[Envelope]]]
"""(filter, after_seq, up_to_seq) → the next stored envelopes in that range, oldest first."""


class SubscriptionState(enum.StrEnum):
    ACTIVE = "active"
    #: Cut off after an overflow; the iterator drains, then raises ``SubscriberDisconnected``.
    DISCONNECTED = "disconnected"
    #: Closed by its owner or by the bus stopping; the iterator drains, then stops.
    CLOSED = "closed"


class Subscription:
    """Async iterator of the envelopes matching ``filter``. Use as ``async with`` / ``async for``."""

    __slots__ = (
        "_on_close",
        "_queue",
        "_replay",
        "_replay_end",
        "_replay_page",
        "_replay_seq",
        "_waiter",
        "dropped",
        "exact",
        "filter",
        "id",
        "last_seq",
        "max_queue",
        "policy",
        "reason",
        "state",
        "__weakref__",
    )

    def __init__(
        self,
        sub_id: int,
        filter: EnvelopeFilter,
        *,
        max_queue: int,
        policy: OverflowPolicy,
        on_close: Callable[[Subscription], None],
        since_seq: int,
    ) -> None:
        self.id = sub_id
        self.filter = filter
        #: True when the filter sets only ``recipient`` or only ``channel``: the bus's index on
        #: that field has already matched it, so publish skips ``filter.matches``.
        self.exact = len(filter.to_dict()) == 1 and (filter.recipient is not None or filter.channel is not None)
        self.max_queue = max_queue
        self.policy = policy
        self.state = SubscriptionState.ACTIVE
        #: Why it stopped (``overflow``, ``closed``, ``bus stopped``), None while active.
        self.reason: str | None = None
        #: Envelopes discarded by ``drop_oldest``.
        self.dropped = 0
        #: The seq of the last envelope yielded (or the ``since_seq`` it started from).
        self.last_seq = since_seq
        self._on_close = on_close
        self._queue: deque[Envelope] = deque()
        self._replay: deque[Envelope] = deque()
        self._replay_page: ReplayPage | None = None
        self._replay_seq = since_seq
        self._replay_end = since_seq
        self._waiter: asyncio.Future[None] | None = None

    # Fed by the bus --------------------------------------------------------------------------

    def _set_replay(self, envelopes: list[Envelope]) -> None:
        self._replay.extend(envelopes)

    def _set_stored_replay(self, page: ReplayPage, end_seq: int) -> None:
        """Replay ``(last_seq, end_seq]`` from storage, page by page, before the live queue."""
        self._replay_page = page
        self._replay_end = end_seq

    def _offer(self, env: Envelope) -> bool:
        """Queue a live envelope; returns False when the subscriber was cut off by it."""
        queue = self._queue
        if len(queue) >= self.max_queue:
            if self.policy == "disconnect":
                self._stop(SubscriptionState.DISCONNECTED, "overflow")
                return False
            queue.popleft()
            self.dropped += 1
        queue.append(env)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def _stop(self, state: SubscriptionState, reason: str) -> None:
        if self.state is not SubscriptionState.ACTIVE:
            return
        self.state = state
        self.reason = reason
        self._on_close(self)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # Consumer side ---------------------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue) + len(self._replay)

    def close(self) -> None:
        """Stop receiving; the iterator yields what it holds, then ends."""
        self._stop(SubscriptionState.CLOSED, "closed")

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Envelope:
        while True:
            if self._replay:
                env = self._replay.popleft()
            elif self._replay_page is not None:
                await self._load_page()
                continue
            elif self._queue:
                env = self._queue.popleft()
            elif self.state is SubscriptionState.DISCONNECTED:
                raise SubscriberDisconnected(
                    f"subscriber {self.id} fell more than {self.max_queue} envelopes behind and was cut off; "
                    f"subscribe again with since_seq={self.last_seq} to resume",
                    resume_seq=self.last_seq,
                )
            elif self.state is SubscriptionState.CLOSED:
                raise StopAsyncIteration
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
                continue
            if env.seq <= self.last_seq:
                continue  # replay and live overlap by construction never; this guards it anyway
            self.last_seq = env.seq
            return env

    async def get(self, timeout: float | None = None) -> Envelope:
        """The next envelope, waiting at most ``timeout`` seconds.

        Raises:
            TimeoutError: nothing arrived in time.
            StopAsyncIteration: the subscription is closed and drained.
            SubscriberDisconnected: it was cut off and drained.
        """
        return await asyncio.wait_for(self.__anext__(), timeout)

    async def _load_page(self) -> None:
        page = self._replay_page
        if page is None or self._replay_seq >= self._replay_end:
            self._replay_page = None
            return
        batch = await page(self.filter, self._replay_seq, self._replay_end)
        if not batch:
            self._replay_page = None
            return
        self._replay_seq = batch[-1].seq
        self._replay.extend(batch)
