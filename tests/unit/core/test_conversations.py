from __future__ import annotations

from pathlib import Path

import pytest

from penguin import PenguinCore
from penguin.errors import CheckpointNotFound, Conflict, ConversationNotFound, ValidationFailed


async def _say(core: PenguinCore, agent: str, *texts: str) -> str:
    conv = ""
    for t in texts:
        conv = (await core.chat(t, agent_id=agent)).conversation_id
    return conv


async def test_message_rows_carry_every_field(core: PenguinCore) -> None:
    conv = await _say(core, "support", "one")
    user, reply = await core.history("support")
    assert (user.seq, user.role, user.sender, user.recipient_id, user.message_type) == (
        1,
        "user",
        "human",
        "support",
        "message",
    )
    assert (reply.seq, reply.role, reply.sender, reply.recipient_id) == (2, "assistant", "support", "human")
    assert reply.usage == {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    for m in (user, reply):
        assert m.conversation_id == conv and m.agent_id == "support" and m.tenant_id == "default"
        assert m.created_at > 0 and m.id.startswith("msg_")


async def test_separate_logs_per_agent(core: PenguinCore) -> None:
    a = await _say(core, "support", "s1", "s2")
    b = await _say(core, "engineering", "e1")
    assert a != b
    assert [m.content for m in await core.history("support")] == ["s1", "s1", "s2", "s2"]
    assert [m.content for m in await core.history("engineering")] == ["e1", "e1"]


async def test_conversation_must_belong_to_agent(core: PenguinCore) -> None:
    conv = await _say(core, "support", "s1")
    await core.create_agent("other")
    with pytest.raises(Conflict):
        await core.chat("x", agent_id="other", conversation_id=conv)
    with pytest.raises(ConversationNotFound):
        await core.chat("x", agent_id="other", conversation_id="conv_nope")


async def test_checkpoint_rollback_keeps_later_messages_on_a_branch(core: PenguinCore) -> None:
    conv = await _say(core, "support", "a", "b")
    cp = await core.checkpoint("after-b", agent_id="support")
    assert cp.seq == 4
    await _say(core, "support", "c", "d")
    rolled, archive = await core.rollback(cp.id)
    assert rolled.id == conv
    assert [m.content for m in await core.history(conversation_id=conv)] == ["a", "a", "b", "b"]
    assert archive is not None and archive.kind == "archive" and archive.parent_id == conv
    assert [m.content for m in await core.history(conversation_id=archive.id)] == [
        "a",
        "a",
        "b",
        "b",
        "c",
        "c",
        "d",
        "d",
    ]
    # the conversation continues from the checkpoint with gapless seq
    await _say(core, "support", "e")
    assert [m.seq for m in await core.history("support")] == [1, 2, 3, 4, 5, 6]


async def test_branch_from_checkpoint(core: PenguinCore) -> None:
    await _say(core, "support", "a")
    cp = await core.checkpoint("one", agent_id="support")
    await _say(core, "support", "b")
    branch = await core.branch(cp.id, title="what if")
    assert branch.kind == "branch" and branch.title == "what if"
    await core.chat("z", agent_id="support", conversation_id=branch.id)
    assert [m.content for m in await core.history(conversation_id=branch.id)] == ["a", "a", "z", "z"]
    assert [m.content for m in await core.history("support")] == ["a", "a", "b", "b"]
    assert {c.id for c in await core.list_conversations("support")} >= {branch.id}


async def test_checkpoint_errors(core: PenguinCore) -> None:
    with pytest.raises(CheckpointNotFound):
        await core.rollback("cp_missing")
    with pytest.raises(CheckpointNotFound):
        await core.branch("cp_missing")
    with pytest.raises(ValidationFailed):
        await core.checkpoint("", agent_id="default")
    with pytest.raises(ConversationNotFound):
        await core.list_checkpoints(conversation_id="conv_missing")


async def test_history_paging_and_filters(core: PenguinCore) -> None:
    conv = await _say(core, "support", *[f"m{i}" for i in range(10)])
    page = await core.history_page(conv, after_seq=0, limit=7)
    assert [m.seq for m in page] == list(range(1, 8))
    page = await core.history_page(conv, after_seq=7, limit=100)
    assert [m.seq for m in page] == list(range(8, 21))
    assert len(await core.history_page(conv, message_type="message", agent_id="support")) == 20
    assert await core.history_page(conv, channel="nope") == []
    with pytest.raises(ValidationFailed):
        await core.history_page(conv, limit=0)
    with pytest.raises(ValidationFailed):
        await core.history_page(conv, after_seq=-1)


async def test_restart_sees_histories_and_checkpoints(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        conv = await _say(core, "support", "a", "b")
        cp = await core.checkpoint("cp1", agent_id="support")
        history = [m.to_dict() for m in await core.history("support")]
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        assert [m.to_dict() for m in await core.history("support")] == history
        assert [c.id for c in await core.list_checkpoints(agent_id="support")] == [cp.id]
        result = await core.chat("c", agent_id="support")
        assert result.conversation_id == conv
        assert [m.seq for m in await core.history("support")] == [1, 2, 3, 4, 5, 6]
