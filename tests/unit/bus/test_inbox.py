"""The durable inbox: receipts that never claim more than happened, order, pause, restart."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from bus_helpers import Gate

from penguin import PenguinCore, ScriptedModel
from penguin.bus import ReceiptNotFound, ReceiptStatus
from penguin.errors import AgentNotFound, ValidationFailed
from penguin.models.scripted import last_user_text
from penguin.storage.database import Database
from penguin.storage.schema import receipts

QUEUED, DELIVERED, PROCESSED, FAILED = (ReceiptStatus.QUEUED, ReceiptStatus.DELIVERED,
                                        ReceiptStatus.PROCESSED, ReceiptStatus.FAILED)


async def stored_status(core: PenguinCore, message_id: str) -> str:
    await core.bus.flush()
    async with core.db.read() as conn:
        query = sa.select(receipts.c.status).where(receipts.c.message_id == message_id)
        return str((await conn.execute(query)).scalar())


async def statuses_published(core: PenguinCore, agent_id: str, message_id: str) -> list[str]:
    events = await core.list_messages(channel=f"agent:{agent_id}", message_type="status", limit=1000)
    return [e.content for e in events if e.causation_id == message_id]


async def test_receipt_states_follow_the_real_delivery(core: PenguinCore) -> None:
    gate = Gate()
    core.models.register("scripted:gate", ScriptedModel(gate))
    await core.create_agent("worker", model="scripted:gate", paused=True)

    receipt = await core.send_message("human", "worker", "hello")
    assert receipt.status is QUEUED and receipt.reply_id is None
    assert await stored_status(core, receipt.message_id) == "queued"  # paused: its turn cannot start

    await core.resume_agent("worker")
    await gate.started.wait()  # the model is running: the turn started, nothing finished yet
    running = await core.get_receipt(receipt.message_id)
    assert running.status is DELIVERED and running.reply_id is None
    assert running.conversation_id is not None and running.turn_id is not None
    assert await stored_status(core, receipt.message_id) == "delivered"

    gate.release.set()
    done = await core.wait_receipt(receipt.message_id, timeout=5)
    assert done.status is PROCESSED and done.turn_id == running.turn_id
    reply = await core.get_message(done.reply_id or "")
    assert (reply.sender, reply.recipient, reply.content) == ("worker", "human", "done: hello")
    assert reply.causation_id == receipt.message_id
    assert await stored_status(core, receipt.message_id) == "processed"
    assert await statuses_published(core, "worker", receipt.message_id) == [
        "receipt.queued", "receipt.delivered", "receipt.processed",
    ]


async def test_a_failing_turn_fails_its_receipt_with_the_reason(core: PenguinCore) -> None:
    await core.create_agent("broken", model="scripted:error")
    receipt = await core.send_message("human", "broken", "hi")
    done = await core.wait_receipt(receipt.message_id, timeout=5)
    assert done.status is FAILED and done.reply_id is None
    assert done.reason is not None and "scripted failure" in done.reason
    assert await statuses_published(core, "broken", receipt.message_id) == [
        "receipt.queued", "receipt.delivered", "receipt.failed",
    ]
    replies = await core.list_messages(sender="broken", message_type="message")
    assert replies == []


async def test_a_paused_agent_keeps_messages_queued_until_resumed(core: PenguinCore) -> None:
    model = ScriptedModel(lambda r: f"re: {last_user_text(r)}")
    core.models.register("scripted:counting", model)
    await core.create_agent("sleepy", model="scripted:counting", paused=True)
    sent = [await core.send_message("human", "sleepy", f"m{i}") for i in range(3)]
    first = await core.wait_receipt(sent[0].message_id, timeout=0.2)
    assert first.status is QUEUED and first.reason is None
    assert [(await core.get_receipt(r.message_id)).status for r in sent] == [QUEUED] * 3
    assert model.calls == 0 and core.inbox.pending("sleepy") == 3

    await core.resume_agent("sleepy")
    done = [await core.wait_receipt(r.message_id, timeout=5) for r in sent]
    assert [r.status for r in done] == [PROCESSED] * 3
    history = await core.history("sleepy")
    assert [m.content for m in history if m.role == "user"] == ["m0", "m1", "m2"]
    assert model.calls == 3


async def test_many_messages_to_many_agents_are_each_processed_once_in_arrival_order(core: PenguinCore) -> None:
    model = ScriptedModel(lambda r: f"re: {last_user_text(r)}")
    core.models.register("scripted:many", model)
    agents = [f"agent-{i:03d}" for i in range(100)]
    for agent_id in agents:
        await core.create_agent(agent_id, model="scripted:many")
    started = time.perf_counter()
    sent = await asyncio.gather(*(
        core.send_message("human", agents[i % 100], f"message {i}") for i in range(1000)
    ))
    done = await asyncio.gather(*(core.wait_receipt(r.message_id, timeout=60) for r in sent))
    elapsed = time.perf_counter() - started
    assert [r.status for r in done] == [PROCESSED] * 1000
    assert model.calls == 1000
    for agent_id in agents:
        arrival = [r.message_id for r in sorted(sent, key=lambda r: r.seq) if r.recipient == agent_id]
        history = await core.history(agent_id)
        processed = [(m.metadata or {}).get("message_id") for m in history if m.role == "user"]
        assert processed == arrival  # each once, in its own arrival order
    print(f"1000 messages to 100 agents: {elapsed:.2f}s")


async def test_unfinished_messages_are_redelivered_after_a_restart(tmp_path: Path, database_url: str) -> None:
    gate = Gate()
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        core.models.register("scripted:gate", ScriptedModel(gate))
        await core.create_agent("busy", model="scripted:gate")
        await core.create_agent("sleepy", paused=True)
        in_flight = await core.send_message("human", "busy", "started before the stop")
        waiting = await core.send_message("human", "sleepy", "queued before the stop")
        await gate.started.wait()
        assert (await core.get_receipt(in_flight.message_id)).status is DELIVERED

    counting = ScriptedModel(lambda r: f"re: {last_user_text(r)}")
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        core.models.register("scripted:gate", counting)
        done = await core.wait_receipt(in_flight.message_id, timeout=5)
        assert done.status is PROCESSED and counting.calls == 1
        assert (await core.get_message(done.reply_id or "")).content == "re: started before the stop"
        assert (await core.get_receipt(waiting.message_id)).status is QUEUED
        await core.resume_agent("sleepy")
        assert (await core.wait_receipt(waiting.message_id, timeout=5)).status is PROCESSED
        replies = [m for m in await core.history("busy") if m.role == "assistant"]
        assert [m.content for m in replies] == ["re: started before the stop"]


async def test_a_turn_that_completed_before_a_crash_is_not_run_again(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        await core.create_agent("worker")
        receipt = await core.send_message("human", "worker", "only once")
        assert (await core.wait_receipt(receipt.message_id, timeout=5)).status is PROCESSED
    # Simulate a crash between the turn's commit and the receipt update.
    db = Database(database_url)
    async with db.transaction() as conn:
        await conn.execute(sa.update(receipts).where(receipts.c.message_id == receipt.message_id)
                           .values(status="delivered", reply_id=None))
    await db.aclose()

    model = ScriptedModel(["must not run"])
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        core.models.register("scripted:echo", model)
        done = await core.wait_receipt(receipt.message_id, timeout=5)
        assert done.status is PROCESSED and done.reason is not None and "recovered" in done.reason
        assert (await core.get_message(done.reply_id or "")).content == "only once"
        assert model.calls == 0
        assert [m.content for m in await core.history("worker") if m.role == "user"] == ["only once"]


async def test_addresses(core: PenguinCore) -> None:
    to_human = await core.send_message("worker", "human", "for you")
    assert to_human.status is ReceiptStatus.PUBLISHED and to_human.recipient == "human"
    assert (await core.list_messages(recipient="human"))[-1].content == "for you"

    await core.create_agent("qa-1", roles=["qa"])
    by_role = await core.send_message("human", "role:qa", "check this")
    assert (by_role.recipient, by_role.addressed_to) == ("qa-1", "role:qa")
    assert (await core.wait_receipt(by_role.message_id, timeout=5)).status is PROCESSED

    with pytest.raises(AgentNotFound):
        await core.send_message("human", "nobody", "hello")
    with pytest.raises(AgentNotFound, match="role"):
        await core.send_message("human", "role:ghost", "hello")
    with pytest.raises(ValidationFailed, match="cannot deliver"):
        await core.send_message("human", "tool:x", "hello")
    with pytest.raises(ValidationFailed, match="post_to_room"):
        await core.send_message("human", None, "hello", channel="team")
    with pytest.raises(ValidationFailed, match="content"):
        await core.send_message("human", "qa-1", "   ")
    with pytest.raises(ReceiptNotFound):
        await core.get_receipt("msg_nothing")


async def test_removing_an_agent_fails_its_waiting_messages(core: PenguinCore) -> None:
    await core.create_agent("doomed", paused=True)
    receipt = await core.send_message("human", "doomed", "will never run")
    await core.remove_agent("doomed")
    done = await core.wait_receipt(receipt.message_id, timeout=5)
    assert done.status is FAILED and done.reason == "the agent was removed"


async def test_senders_list_their_receipts(core: PenguinCore) -> None:
    await core.create_agent("a")
    mine = [await core.send_message("alice", "a", f"q{i}") for i in range(3)]
    await core.send_message("bob", "a", "other")
    for r in mine:
        await core.wait_receipt(r.message_id, timeout=5)
    listed = await core.list_receipts(sender="alice")
    assert [r.message_id for r in listed] == [r.message_id for r in mine]
    assert {r.status for r in listed} == {PROCESSED}
    assert [r.message_id for r in await core.list_receipts(sender="alice", since_seq=mine[0].seq, limit=1)] == [
        mine[1].message_id
    ]
