"""Role chains that forward real replies, broadcasts with one result per target."""

from __future__ import annotations

from penguin import PenguinCore, ScriptedModel
from penguin.bus import ReceiptStatus
from penguin.models.scripted import last_user_text


def transform(tag: str) -> ScriptedModel:
    return ScriptedModel(lambda r: f"{tag}({last_user_text(r)})", name=f"scripted:{tag}")


async def test_planner_implementer_qa_chain_forwards_each_real_reply(core: PenguinCore) -> None:
    for role in ("planner", "implementer", "qa"):
        core.models.register(f"scripted:{role}", transform(role))
        await core.create_agent(f"{role}-1", model=f"scripted:{role}")
        await core.assign_role(role, [f"{role}-1"])

    lineage = await core.role_chain(["planner", "implementer", "qa"], "add login")

    assert lineage.status == "completed"
    assert [(s.role, s.agent_id, s.input, s.output) for s in lineage.steps] == [
        ("planner", "planner-1", "add login", "planner(add login)"),
        ("implementer", "implementer-1", "planner(add login)", "implementer(planner(add login))"),
        ("qa", "qa-1", "implementer(planner(add login))", "qa(implementer(planner(add login)))"),
    ]
    assert lineage.output == "qa(implementer(planner(add login)))"
    assert all(s.usage.total_tokens > 0 and s.status == "processed" for s in lineage.steps)
    # Each reply really came from the agent's turn, and each step was a real message from the
    # previous agent, carried on the bus under one correlation id.
    for step in lineage.steps:
        reply = await core.get_message(step.reply_id or "")
        assert (reply.sender, reply.content) == (step.agent_id, step.output)
        request = await core.get_message(step.message_id or "")
        assert request.correlation_id == lineage.correlation_id
    senders = [(await core.get_message(s.message_id or "")).sender for s in lineage.steps]
    assert senders == ["human", "planner-1", "implementer-1"]


async def test_a_chain_stops_at_the_first_failing_step(core: PenguinCore) -> None:
    await core.create_agent("p", roles=["planner"])
    await core.create_agent("i", roles=["implementer"], model="scripted:error")
    await core.create_agent("q", roles=["qa"])
    lineage = await core.role_chain(["planner", "implementer", "qa"], "task")
    assert lineage.status == "failed"
    assert [s.status for s in lineage.steps] == ["processed", "failed"]
    assert lineage.steps[1].error is not None and lineage.steps[1].output is None
    assert [m for m in await core.history("q")] == []


async def test_broadcast_to_five_agents_returns_five_results(core: PenguinCore) -> None:
    core.models.register("scripted:named", ScriptedModel(lambda r: f"{r.agent_id}: {last_user_text(r)}"))
    agents = [f"b{i}" for i in range(5)]
    for agent_id in agents:
        await core.create_agent(agent_id, model="scripted:named")
    await core.assign_role("reviewer", agents[:3])

    answers = await core.broadcast("status?", roles=["reviewer"], agents=agents[3:])

    assert [(a.agent_id, a.status, a.text) for a in answers] == [(a, "processed", f"{a}: status?") for a in agents]
    assert {a.receipt.status for a in answers if a.receipt} == {ReceiptStatus.PROCESSED}


async def test_broadcast_to_a_room_and_pending_answers_keep_their_receipt(core: PenguinCore) -> None:
    await core.create_agent("awake")
    await core.create_agent("asleep", paused=True)
    await core.create_room("all", members=["awake", "asleep"])
    answers = await core.broadcast("ping", room="all", timeout=0.3)
    by_agent = {a.agent_id: a for a in answers}
    assert by_agent["awake"].status == "processed" and by_agent["awake"].text == "ping"
    assert by_agent["asleep"].status == "pending"
    assert by_agent["asleep"].receipt is not None and by_agent["asleep"].receipt.status is ReceiptStatus.QUEUED
    await core.resume_agent("asleep")
    final = await core.wait_receipt(by_agent["asleep"].message_id or "", "asleep", timeout=5)
    assert final.status is ReceiptStatus.PROCESSED
