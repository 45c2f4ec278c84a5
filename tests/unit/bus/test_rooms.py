"""Rooms: membership, fan-out to every member but the sender, replies to the room, history."""

from __future__ import annotations

from pathlib import Path

import pytest

from penguin import PenguinCore, ScriptedModel
from penguin.bus import ReceiptStatus, RoomExists, RoomNotFound
from penguin.errors import AgentNotFound
from penguin.models.scripted import last_user_text


async def test_membership(core: PenguinCore) -> None:
    for agent_id in ("ann", "bob", "cy"):
        await core.create_agent(agent_id)
    room = await core.create_room("team", members=["ann", "bob"], created_by="human")
    assert room.members == ("ann", "bob")
    assert (await core.join_room("team", "cy")).members == ("ann", "bob", "cy")
    assert (await core.join_room("team", "cy")).members == ("ann", "bob", "cy")
    assert (await core.leave_room("team", "ann")).members == ("bob", "cy")
    assert [r.name for r in core.list_rooms(member="bob")] == ["team"]
    assert core.list_rooms(member="ann") == []
    with pytest.raises(RoomExists):
        await core.create_room("team")
    with pytest.raises(RoomNotFound):
        await core.join_room("nope", "ann")
    with pytest.raises(AgentNotFound):
        await core.join_room("team", "ghost")
    await core.remove_agent("cy")
    assert core.get_room("team").members == ("bob",)
    events = [e.content for e in await core.room_history("team", message_type="event")]
    assert events == ["room.created", "room.joined", "room.left", "room.left"]


async def test_a_post_reaches_every_member_but_the_sender_and_replies_go_to_the_room(core: PenguinCore) -> None:
    model = ScriptedModel(lambda r: f"{r.agent_id} saw {last_user_text(r)}")
    core.models.register("scripted:room", model)
    members = ["ann", "bob", "cy"]
    for agent_id in members:
        await core.create_agent(agent_id, model="scripted:room")
    await core.create_room("team", members=members)

    post = await core.post_to_room("team", "ann", "standup")
    assert post.envelope.recipient is None and post.envelope.channel == "team"
    assert sorted(r.recipient for r in post.receipts) == ["bob", "cy"]
    assert {r.status for r in post.receipts} == {ReceiptStatus.QUEUED}
    done = [await core.wait_receipt(post.envelope.id, r.recipient, timeout=5) for r in post.receipts]
    assert {r.status for r in done} == {ReceiptStatus.PROCESSED}

    history = await core.room_history("team", message_type="message")
    assert history[0] == post.envelope
    replies = history[1:]
    assert sorted((e.sender, e.content) for e in replies) == [("bob", "bob saw standup"), ("cy", "cy saw standup")]
    assert all(e.recipient is None and e.causation_id == post.envelope.id for e in replies)
    assert model.calls == 2  # replies in the room start no further turns
    assert [m.content for m in await core.history("ann")] == []


async def test_rooms_survive_a_restart(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        await core.create_agent("ann")
        await core.create_room("team", members=["ann"], metadata={"topic": "release"})
        post = await core.post_to_room("team", "human", "hello room")
        await core.wait_receipt(post.envelope.id, "ann", timeout=5)
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        room = core.get_room("team")
        assert (room.members, dict(room.metadata)) == (("ann",), {"topic": "release"})
        contents = [e.content for e in await core.room_history("team", message_type="message")]
        assert contents == ["hello room", "hello room"]
