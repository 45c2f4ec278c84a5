"""The telemetry collector over a real core: exact counts per agent, tokens, tasks, rooms, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from penguin import PenguinCore
from penguin.engine.results import ChatResult
from penguin.errors import AgentNotFound, InvalidAgentId, ModelError
from penguin.models.base import ModelRequest, ModelResponse, Usage
from penguin.models.scripted import ScriptedModel, last_user_text
from penguin.telemetry import CollectorState


def metered(request: ModelRequest) -> ModelResponse:
    """Replies with the user's text and reports usage derived from it (10 tokens a word in, 1 a char out)."""
    text = last_user_text(request)
    return ModelResponse(text=text, usage=Usage(input_tokens=10 * len(text.split()), output_tokens=len(text)))


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        core.models.register("scripted:metered", ScriptedModel(metered, name="scripted:metered"))
        yield core


async def test_chats_to_three_agents_are_counted_exactly_per_agent(core: PenguinCore) -> None:
    plan = {"support": ["hi", "two words", "and three words"], "engineering": ["deploy it"], "release": ["a", "b"]}
    results: dict[str, list[ChatResult]] = {}
    for agent_id, texts in plan.items():
        await core.create_agent(agent_id, model="scripted:metered")
        results[agent_id] = [await core.chat(text, agent_id=agent_id) for text in texts]

    summary = await core.telemetry_summary()

    assert sorted(summary.agents) == ["default", "engineering", "release", "support"]
    for agent_id, done in results.items():
        entry = summary.agents[agent_id]
        assert entry["turns"] == len(done)
        assert entry["tokens"] == {
            "input_tokens": sum(r.usage.input_tokens for r in done),
            "output_tokens": sum(r.usage.output_tokens for r in done),
            "total_tokens": sum(r.usage.total_tokens for r in done),
        }
        assert entry["latency_ms"]["count"] == len(done)
        assert entry["latency_ms"]["max"] == pytest.approx(max(r.timings["total"] for r in done), abs=1e-3)
        assert 0 < entry["latency_ms"]["p50"] <= entry["latency_ms"]["p95"] <= entry["latency_ms"]["max"]
        # agent.created + one turn.completed per turn, all on the agent's own channel.
        assert entry["messages"]["by_type"] == {"event": 1 + len(done)}
        assert entry["messages"]["by_channel"] == {f"agent:{agent_id}": 1 + len(done)}
        assert entry["model"] == "scripted:metered" and entry["errors"] == {}
    assert summary.agents["support"]["tokens"] == {"input_tokens": 60, "output_tokens": 26, "total_tokens": 86}
    assert summary.turns == 6
    assert summary.tokens["total_tokens"] == sum(r.usage.total_tokens for done in results.values() for r in done)
    # The default persona is created when the core starts, after the collector subscribed.
    assert summary.agent_events == {"created": 4}
    assert summary.messages["total"] == summary.observed == 4 + 6
    assert summary.messages["by_agent"] == {"default": 1, "engineering": 2, "release": 3, "support": 4}
    assert summary.dropped == 0


async def test_agent_filter_and_bad_agent_ids(core: PenguinCore) -> None:
    await core.chat("hello", agent_id="one")
    await core.chat("hello", agent_id="two")
    await core.chat("again", agent_id="two")

    only = await core.telemetry_summary("two")
    assert only.agent_id == "two" and list(only.agents) == ["two"]
    assert only.turns == 2 and only.messages["total"] == 3 and only.messages["by_channel"] == {"agent:two": 3}
    with pytest.raises(AgentNotFound):
        await core.telemetry_summary("ghost")
    with pytest.raises(InvalidAgentId):
        await core.telemetry_summary("not valid!")

    await core.remove_agent("two")
    after = await core.telemetry_summary()
    assert "two" not in after.agents and after.agent_events == {"created": 3, "removed": 1}


async def test_tasks_by_status_and_errors(core: PenguinCore) -> None:
    await core.create_agent("worker")
    await core.create_agent("broken", model="scripted:error")
    await core.create_agent("slow", model_parameters={"delay": 30})
    done = await core.run_task("ship it TASK_COMPLETE", agent_id="worker", max_iterations=2)
    failed = await core.run_task("try", agent_id="broken")
    slow = await core.run_task("wait", agent_id="slow", max_iterations=1000)
    assert (await core.wait_task(done.id, timeout=10)).status.value == "completed"
    assert (await core.wait_task(failed.id, timeout=10)).status.value == "failed"
    running = await core.telemetry_summary("slow")
    assert running.tasks == {"by_status": {"running": 1}, "total": 1}
    await core.cancel_task(slow.id)

    summary = await core.telemetry_summary()
    assert summary.tasks == {"by_status": {"cancelled": 1, "completed": 1, "failed": 1}, "total": 3}
    assert summary.agents["worker"]["tasks"] == {"completed": 1}
    assert summary.agents["broken"]["tasks"] == {"failed": 1}
    assert summary.agents["broken"]["errors"] == {"task": 1, "turn": 1}
    assert summary.errors == {"task": 1, "turn": 1}


async def test_a_failed_chat_is_an_error_not_a_turn(core: PenguinCore) -> None:
    with pytest.raises(ModelError):
        await core.chat("hi", agent_id="flaky", model="scripted:error")
    entry = (await core.telemetry_summary("flaky")).agents["flaky"]
    assert entry["turns"] == 0 and entry["errors"] == {"turn": 1}


async def test_rooms_posts_replies_and_receipts(core: PenguinCore) -> None:
    for agent_id in ("alice", "bob"):
        await core.create_agent(agent_id, model="scripted:metered")
    await core.create_room("team", members=["alice", "bob"])
    await core.create_room("empty")
    post = await core.post_to_room("team", "human", "standup time")
    for receipt in post.receipts:
        assert (await core.wait_receipt(receipt.message_id, receipt.recipient, timeout=10)).status.value == "processed"

    summary = await core.telemetry_summary()
    assert summary.rooms == {"count": 2, "rooms": {"empty": {"members": 0, "posts": 0, "replies": 0},
                                                   "team": {"members": 2, "posts": 1, "replies": 2}}}
    assert summary.receipts == {"delivered": 2, "processed": 2, "queued": 2}
    for agent_id in ("alice", "bob"):
        entry = summary.agents[agent_id]
        assert entry["turns"] == 1 and entry["receipts"] == {"delivered": 1, "processed": 1, "queued": 1}
        assert entry["tokens"]["output_tokens"] == len("standup time")
    assert (await core.telemetry_summary("alice")).rooms["count"] == 1


async def test_tool_calls_and_denials_come_from_the_policy(core: PenguinCore) -> None:
    await core.create_agent("tooler", model="scripted:tool", tool_policy={"deny": ["read_file"]},
                            model_parameters={"tool": "read_file", "arguments": {"path": "x.txt"}})
    await core.chat("read it", agent_id="tooler")
    entry = (await core.telemetry_summary("tooler")).agents["tooler"]
    assert entry["tool_calls"]["denied"] == 1 and entry["tool_calls"]["allowed"] == 0
    assert entry["tool_calls"]["in_turns"] == 1
    assert sum(entry["tool_calls"]["denied_by_reason"].values()) == 1


async def test_collector_follows_the_core_lifecycle(tmp_path: Path) -> None:
    core = PenguinCore(data_dir=tmp_path, model="scripted:echo")
    states = [core.telemetry.state]
    async with core:
        states.append(core.telemetry.state)
        await core.chat("hi")
        assert (await core.telemetry_summary()).turns == 1
    states.append(core.telemetry.state)
    assert states == [CollectorState.NEW, CollectorState.RUNNING, CollectorState.STOPPED]
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as again:
        # Counters are per process run, like Prometheus counters: a restart starts from zero.
        assert (await again.telemetry_summary()).turns == 0


async def test_messages_tallied_between_reads_are_counted_exactly(
    core: PenguinCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain messages are tallied and folded later; overflowing the tallies, events in between
    (an agent removed) and reads in between never change a count."""
    import penguin.telemetry.collector as collector_module
    from penguin.bus.envelope import Envelope

    monkeypatch.setattr(collector_module, "MAX_TALLIES", 3)
    for agent_id in ("a1", "a2", "a3", "a4"):
        await core.create_agent(agent_id)
    for round_ in range(3):
        for n, agent_id in enumerate(("a1", "a2", "a3", "a4")):
            for _ in range(n + 1):
                await core.bus.publish(Envelope(id=f"m-{round_}-{agent_id}-{_}", sender="a1", recipient=agent_id,
                                                content="x", channel="ops"))
        if round_ == 0:
            await core.remove_agent("a4")  # its first round's messages go with it
            await core.create_agent("a4")
        if round_ == 1:
            await core.telemetry_summary()  # a read in between folds what is tallied so far
    summary = await core.telemetry_summary()
    received = {a: summary.agents[a]["messages"]["by_type"].get("message", 0) for a in ("a1", "a2", "a3", "a4")}
    # a1 sent all 30 and received its own 3; a4's first round (4) was dropped with it.
    assert received == {"a1": 30, "a2": 6, "a3": 9, "a4": 8}
    assert summary.messages["by_channel"]["ops"] == 30
