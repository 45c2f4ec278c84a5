"""``MemoryBus``: the in-process ``MessageBus`` backend, persisted to the ``envelopes`` table.

Publishing assigns the next global ``seq``, appends to a bounded ring (recent history for cheap
replay), hands the envelope to the write-behind committer and offers it to every matching
subscriber's bounded queue. Nothing on that path awaits, so a publisher is never blocked by a
subscriber or by the database. Subscribers are indexed by recipient and channel (a per-agent
or per-room subscriber is not even looked at for other traffic) and held by strong references
until they close or are cut off.

Replay reads the ring when it still covers the requested range, else the table (after flushing
what is pending), so replay after a restart returns the same envelopes as before it. One
process owns the sequence: several processes sharing a database need a distributed backend
(see ``penguin.bus.protocol``).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any

import msgspec
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Row

from penguin.bus._commit import GroupCommit
from penguin.bus.envelope import Envelope
from penguin.bus.errors import BusClosed, MessageNotFound
from penguin.bus.filters import EnvelopeFilter
from penguin.bus.subscription import OverflowPolicy, Subscription, SubscriptionState
from penguin.errors import ValidationFailed
from penguin.storage.database import Database
from penguin.storage.schema import envelopes as env_t

MAX_REPLAY_PAGE = 1000


def envelope_row(env: Envelope) -> tuple[Any, ...]:
    """The ``envelopes`` row of an envelope, in the table's column order."""
    metadata = env.metadata
    text = "{}"
    if metadata:
        text = orjson.dumps(metadata if type(metadata) is dict else dict(metadata), default=str).decode()
    return (
        env.id, env.seq, env.tenant_id, env.sender, env.recipient, env.channel, env.message_type,
        env.content, text, env.created_at, env.correlation_id, env.causation_id,
    )


def row_envelope(r: Row[Any]) -> Envelope:
    return Envelope(
        id=r.id,
        seq=r.seq,
        tenant_id=r.tenant_id,
        sender=r.sender,
        recipient=r.recipient,
        channel=r.channel,
        message_type=r.message_type,
        content=r.content,
        metadata=orjson.loads(r.metadata),
        created_at=r.created_at,
        correlation_id=r.correlation_id,
        causation_id=r.causation_id,
    )


class MemoryBus:
    """In-process bus with a ring of recent envelopes and write-behind persistence.

    Args:
        db: where envelopes are persisted.
        writer: the shared group committer (started and closed by the owner).
        ring_size: recent envelopes kept in memory for replay without a query.
        ring_chars: total content characters the ring may hold (older envelopes leave first).
        max_queue: default bound of a subscriber's queue.
    """

    def __init__(self, db: Database, writer: GroupCommit, *, ring_size: int = 10_000,
                 ring_chars: int = 64_000_000, max_queue: int = 10_000) -> None:
        if ring_size < 1 or max_queue < 1:
            raise ValidationFailed("ring_size and max_queue must be >= 1", field="ring_size")
        self._db = db
        self._writer = writer
        writer.register(env_t, envelope_row)
        self._ring: deque[Envelope] = deque()
        self._ring_size = ring_size
        self._ring_chars_max = ring_chars
        self._ring_chars = 0
        self._max_queue = max_queue
        self._seq = 0
        self._ids = itertools.count(1)
        self._subs: dict[int, Subscription] = {}
        self._general: tuple[Subscription, ...] = ()
        self._by_recipient: dict[str, tuple[Subscription, ...]] = {}
        self._by_channel: dict[str, tuple[Subscription, ...]] = {}
        self._closed = True
        self._published = 0
        self._delivered = 0
        self._dropped_closed = 0
        self._disconnected = 0

    @property
    def last_seq(self) -> int:
        return self._seq

    async def start(self) -> None:
        async with self._db.read() as conn:
            top = (await conn.execute(sa.select(sa.func.max(env_t.c.seq)))).scalar()
        self._seq = max(self._seq, int(top or 0))
        self._closed = False

    # Publish ---------------------------------------------------------------------------------

    async def publish(self, envelope: Envelope, *, durable: bool = False) -> Envelope:
        """Stamp, deliver, persist. See ``MessageBus.publish``."""
        if self._closed:
            raise BusClosed("the message bus is stopped; start the core again before publishing")
        self._seq += 1
        env = msgspec.structs.replace(envelope, seq=self._seq)
        ring = self._ring
        ring.append(env)
        # Bounded by count and by content size (a few huge messages must not pin gigabytes);
        # evicting from the left keeps the ring a contiguous seq range.
        self._ring_chars += len(env.content)
        while len(ring) > self._ring_size or (self._ring_chars > self._ring_chars_max and len(ring) > 1):
            self._ring_chars -= len(ring.popleft().content)
        self._writer.insert(env_t, env)
        self._published += 1
        delivered = 0
        for sub in self._general:
            if sub.filter.matches(env) and sub._offer(env):
                delivered += 1
        # Indexed subscribers whose filter is only the index key (``exact``) need no further check.
        if env.recipient is not None:
            for sub in self._by_recipient.get(env.recipient, ()):
                if (sub.exact or sub.filter.matches(env)) and sub._offer(env):
                    delivered += 1
        if env.channel is not None:
            for sub in self._by_channel.get(env.channel, ()):
                if (sub.exact or sub.filter.matches(env)) and sub._offer(env):
                    delivered += 1
        self._delivered += delivered
        if durable:
            await self._writer.commit()
        return env

    # Subscribe -------------------------------------------------------------------------------

    def subscribe(
        self,
        filter: EnvelopeFilter | None = None,
        *,
        since_seq: int | None = None,
        max_queue: int | None = None,
        policy: OverflowPolicy = "drop_oldest",
    ) -> Subscription:
        """Register a subscriber; with ``since_seq`` it first replays every later stored envelope.

        A ``since_seq`` beyond the last seq (envelopes lost with a crashed process) is clamped to
        the last seq, so the subscriber never skips new envelopes that reuse those numbers.

        Raises:
            BusClosed: the bus is stopped.
            ValidationFailed: negative ``since_seq``, ``max_queue`` < 1 or an unknown policy.
        """
        if self._closed:
            raise BusClosed("the message bus is stopped; start the core again before subscribing")
        if since_seq is not None and (isinstance(since_seq, bool) or not isinstance(since_seq, int) or since_seq < 0):
            raise ValidationFailed("since_seq must be an integer >= 0", field="since_seq")
        bound = self._max_queue if max_queue is None else max_queue
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
            raise ValidationFailed("max_queue must be an integer >= 1", field="max_queue")
        if policy not in ("drop_oldest", "disconnect"):
            raise ValidationFailed("policy must be 'drop_oldest' or 'disconnect'", field="policy")
        flt = filter or EnvelopeFilter()
        start = self._seq if since_seq is None else min(since_seq, self._seq)
        sub = Subscription(
            next(self._ids), flt, max_queue=bound, policy=policy, on_close=self._unregister, since_seq=start
        )
        self._register(sub)
        if start < self._seq:
            first = self._ring[0].seq if self._ring else self._seq + 1
            if start + 1 >= first:
                window = itertools.islice(self._ring, start + 1 - first, None)
                sub._set_replay([e for e in window if flt.matches(e)])
            else:
                sub._set_stored_replay(self._stored_page, self._seq)
        return sub

    def _register(self, sub: Subscription) -> None:
        self._subs[sub.id] = sub
        f = sub.filter
        if f.recipient is not None:
            self._by_recipient[f.recipient] = (*self._by_recipient.get(f.recipient, ()), sub)
        elif f.channel is not None:
            self._by_channel[f.channel] = (*self._by_channel.get(f.channel, ()), sub)
        else:
            self._general = (*self._general, sub)

    def _unregister(self, sub: Subscription) -> None:
        if self._subs.pop(sub.id, None) is None:
            return
        self._dropped_closed += sub.dropped
        if sub.state is SubscriptionState.DISCONNECTED:
            self._disconnected += 1
        f = sub.filter
        if f.recipient is not None:
            self._by_recipient[f.recipient] = tuple(s for s in self._by_recipient[f.recipient] if s is not sub)
            if not self._by_recipient[f.recipient]:
                del self._by_recipient[f.recipient]
        elif f.channel is not None:
            self._by_channel[f.channel] = tuple(s for s in self._by_channel[f.channel] if s is not sub)
            if not self._by_channel[f.channel]:
                del self._by_channel[f.channel]
        else:
            self._general = tuple(s for s in self._general if s is not sub)

    # Replay and lookup -----------------------------------------------------------------------

    async def replay(
        self, filter: EnvelopeFilter | None = None, *, since_seq: int = 0, limit: int = 100
    ) -> list[Envelope]:
        """Envelopes with ``seq > since_seq`` matching ``filter``, oldest first, at most ``limit``.

        Raises:
            ValidationFailed: bad ``since_seq`` or ``limit``.
        """
        if isinstance(since_seq, bool) or not isinstance(since_seq, int) or since_seq < 0:
            raise ValidationFailed("since_seq must be an integer >= 0", field="since_seq")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_REPLAY_PAGE:
            raise ValidationFailed(f"limit must be between 1 and {MAX_REPLAY_PAGE}", field="limit")
        flt = filter or EnvelopeFilter()
        first = self._ring[0].seq if self._ring else self._seq + 1
        if since_seq + 1 >= first:
            out: list[Envelope] = []
            for env in itertools.islice(self._ring, since_seq + 1 - first, None):
                if flt.matches(env):
                    out.append(env)
                    if len(out) >= limit:
                        break
            return out
        return await self._query(flt, since_seq, None, limit)

    async def _stored_page(self, flt: EnvelopeFilter, after_seq: int, up_to_seq: int) -> list[Envelope]:
        return await self._query(flt, after_seq, up_to_seq, MAX_REPLAY_PAGE)

    async def _query(self, flt: EnvelopeFilter, after_seq: int, up_to_seq: int | None, limit: int) -> list[Envelope]:
        await self._writer.commit()
        query = sa.select(env_t).where(env_t.c.seq > after_seq, *flt.where(env_t))
        if up_to_seq is not None:
            query = query.where(env_t.c.seq <= up_to_seq)
        async with self._db.read() as conn:
            rows = await conn.execute(query.order_by(env_t.c.seq).limit(limit))
            return [row_envelope(r) for r in rows]

    async def get(self, envelope_id: str) -> Envelope:
        """One envelope by id (recent ones from memory).

        Raises:
            MessageNotFound: no such envelope.
        """
        for env in reversed(self._ring):
            if env.id == envelope_id:
                return env
        if not isinstance(envelope_id, str) or not 0 < len(envelope_id) <= 64:
            raise MessageNotFound(f"no message {str(envelope_id)[:80]!r}", field="message_id")
        await self._writer.commit()
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(env_t).where(env_t.c.id == envelope_id))).first()
        if row is None:
            raise MessageNotFound(f"no message {envelope_id!r}", field="message_id")
        return row_envelope(row)

    async def flush(self) -> None:
        await self._writer.commit()

    def stats(self) -> dict[str, Any]:
        live_dropped = sum(s.dropped for s in self._subs.values())
        return {
            "last_seq": self._seq,
            "published": self._published,
            "delivered": self._delivered,
            "dropped": self._dropped_closed + live_dropped,
            "disconnected": self._disconnected,
            "subscribers": len(self._subs),
            "ring": len(self._ring),
            "persisted_batches": self._writer.batches,
            "persisted_items": self._writer.items,
            "pending_writes": self._writer.pending,
            "write_errors": self._writer.errors,
        }

    async def aclose(self) -> None:
        """Close every subscription (their iterators drain, then end) and stop accepting envelopes.

        Pending envelopes are persisted by the writer's ``aclose``, which the owner calls next.
        """
        self._closed = True
        for sub in list(self._subs.values()):
            sub._stop(SubscriptionState.CLOSED, "bus stopped")
