"""The in-process bus: ordering, filters, bounded subscribers, replay (memory, storage, restart)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import pytest
import sqlalchemy as sa
from bus_helpers import Parts

from penguin.bus import (
    BusClosed,
    Envelope,
    EnvelopeFilter,
    IdFactory,
    MessageNotFound,
    PersistFailed,
    SubscriberDisconnected,
    SubscriptionState,
)
from penguin.errors import ValidationFailed
from penguin.storage.schema import envelopes

ids = IdFactory("msg")


def env(content: str = "x", **fields: object) -> Envelope:
    return Envelope(id=ids(), sender=str(fields.pop("sender", "a")), content=content, **fields)  # type: ignore[arg-type]


async def test_publish_assigns_contiguous_seqs_and_delivers_in_order(parts: Parts) -> None:
    sub = parts.bus.subscribe()
    sent = [await parts.bus.publish(env(str(i))) for i in range(20)]
    assert [e.seq for e in sent] == list(range(1, 21))
    got = [await sub.get(1) for _ in range(20)]
    assert got == sent
    assert parts.bus.last_seq == 20


async def test_subscribers_get_only_what_their_filter_selects(parts: Parts) -> None:
    bus = parts.bus
    to_b = bus.subscribe(EnvelopeFilter(recipient="b"))
    room = bus.subscribe(EnvelopeFilter(channel="team", message_type="message"))
    agent_c = bus.subscribe(EnvelopeFilter(agent_id="c"))
    e1 = await bus.publish(env("1", recipient="b"))
    e2 = await bus.publish(env("2", channel="team"))
    await bus.publish(env("3", channel="team", message_type="event"))
    e4 = await bus.publish(env("4", sender="c"))
    e5 = await bus.publish(env("5", channel="agent:c"))
    assert (to_b.queued, room.queued, agent_c.queued) == (1, 1, 2)
    assert [await to_b.get(1), await room.get(1)] == [e1, e2]
    assert [await agent_c.get(1), await agent_c.get(1)] == [e4, e5]


async def test_a_slow_subscriber_never_blocks_the_publisher_and_drops_are_counted(parts: Parts) -> None:
    slow = parts.bus.subscribe(max_queue=5)
    fast = parts.bus.subscribe(max_queue=1000)
    sent = [await parts.bus.publish(env(str(i))) for i in range(100)]
    assert slow.dropped == 95
    assert [await slow.get(1) for _ in range(5)] == sent[-5:]  # drop_oldest keeps the newest
    assert fast.queued == 100 and fast.dropped == 0
    assert parts.bus.stats()["dropped"] == 95


@pytest.mark.parametrize("ring_size", [10_000, 5])
async def test_a_disconnected_subscriber_resumes_with_since_seq_and_misses_nothing(
    database_url: str, ring_size: int
) -> None:
    parts = await Parts(database_url, ring_size=ring_size).start()
    try:
        bus = parts.bus
        sub = bus.subscribe(max_queue=10, policy="disconnect")
        first = [await bus.publish(env(str(i))) for i in range(30)]
        assert sub.state is SubscriptionState.DISCONNECTED
        received = []
        with pytest.raises(SubscriberDisconnected) as cut:
            async for e in sub:
                received.append(e)
        assert len(received) == 10 and cut.value.resume_seq == received[-1].seq
        assert bus.stats()["disconnected"] == 1
        later = [await bus.publish(env(str(i))) for i in range(30, 50)]
        again = bus.subscribe(since_seq=cut.value.resume_seq, max_queue=10, policy="disconnect")
        while len(received) < 50:
            received.append(await again.get(1))
        assert received == first + later
        assert [e.seq for e in received] == list(range(1, 51))
        assert again.state is SubscriptionState.ACTIVE and again.queued == 0
    finally:
        await parts.stop()


async def test_replay_and_subscriptions_survive_a_restart(tmp_path: Path, database_url: str) -> None:
    parts = await Parts(database_url).start()
    sent = [await parts.bus.publish(env(str(i), channel="team" if i % 2 else None)) for i in range(300)]
    await parts.stop()

    parts = await Parts(database_url).start()
    try:
        bus = parts.bus
        assert bus.last_seq == 300
        assert await bus.replay(since_seq=0, limit=1000) == sent
        assert await bus.replay(EnvelopeFilter(channel="team"), since_seq=100, limit=5) == [
            e for e in sent if e.channel == "team" and e.seq > 100
        ][:5]
        sub = bus.subscribe(EnvelopeFilter(channel="team"), since_seq=290)
        live = await bus.publish(env("live", channel="team"))
        got = [await sub.get(1) for _ in range(6)]
        assert got == [e for e in sent if e.channel == "team" and e.seq > 290] + [live]
        assert live.seq == 301
    finally:
        await parts.stop()


async def test_clean_stop_persists_every_accepted_envelope(tmp_path: Path, database_url: str) -> None:
    parts = await Parts(database_url).start()
    for i in range(5000):
        await parts.bus.publish(env(str(i)))
    await parts.stop()  # no flush in between: stop must not lose anything
    parts = await Parts(database_url).start()
    try:
        async with parts.db.read() as conn:
            count = (await conn.execute(sa.select(sa.func.count()).select_from(envelopes))).scalar()
        assert count == 5000
        assert parts.bus.last_seq == 5000
    finally:
        await parts.stop()


async def test_durable_publish_returns_after_the_commit(parts: Parts) -> None:
    stamped = await parts.bus.publish(env("keep"), durable=True)
    async with parts.db.read() as conn:
        row = (await conn.execute(sa.select(envelopes.c.content).where(envelopes.c.id == stamped.id))).first()
    assert row is not None and row.content == "keep"
    assert parts.writer.pending == 0


async def test_subscribers_are_held_strongly(parts: Parts) -> None:
    sub = parts.bus.subscribe()
    ref = weakref.ref(sub)
    del sub
    gc.collect()
    await parts.bus.publish(env())
    alive = ref()
    assert alive is not None and alive.queued == 1
    assert parts.bus.stats()["subscribers"] == 1
    alive.close()
    assert parts.bus.stats()["subscribers"] == 0


async def test_get_finds_recent_and_stored_envelopes(tmp_path: Path, database_url: str) -> None:
    parts = await Parts(database_url, ring_size=2).start()
    try:
        old = await parts.bus.publish(env("old"))
        for _ in range(3):
            await parts.bus.publish(env())
        assert await parts.bus.get(old.id) == old
        with pytest.raises(MessageNotFound):
            await parts.bus.get("msg_missing")
    finally:
        await parts.stop()


async def test_closing_the_bus_ends_subscriptions_and_refuses_publishes(tmp_path: Path, database_url: str) -> None:
    parts = await Parts(database_url).start()
    sub = parts.bus.subscribe()
    kept = await parts.bus.publish(env())
    await parts.stop()
    assert [e async for e in sub] == [kept]
    with pytest.raises(BusClosed):
        await parts.bus.publish(env())
    with pytest.raises(BusClosed):
        parts.bus.subscribe()


async def test_bad_arguments_are_rejected(parts: Parts) -> None:
    with pytest.raises(ValidationFailed, match="since_seq"):
        parts.bus.subscribe(since_seq=-1)
    with pytest.raises(ValidationFailed, match="max_queue"):
        parts.bus.subscribe(max_queue=0)
    with pytest.raises(ValidationFailed, match="policy"):
        parts.bus.subscribe(policy="block")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed, match="limit"):
        await parts.bus.replay(limit=0)


async def test_a_refused_write_fails_loudly_and_later_writes_still_persist(parts: Parts) -> None:
    first = await parts.bus.publish(env("one"), durable=True)
    with pytest.raises(PersistFailed, match="refused"):
        await parts.bus.publish(first, durable=True)  # same id again: the database refuses it
    after = await parts.bus.publish(env("after"), durable=True)
    assert parts.bus.stats()["write_errors"] == 1
    async with parts.db.read() as conn:
        stored = (await conn.execute(sa.select(envelopes.c.content).where(envelopes.c.id == after.id))).scalar()
    assert stored == "after"
