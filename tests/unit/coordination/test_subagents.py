"""Sub-agents: inheritance and budget clamp, delegation (wait/background), cancel, usage, tools."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from penguin import PenguinCore, ScriptedModel
from penguin.models.base import ModelRequest
from penguin.models.scripted import last_user_text


class Gate:
    """A model body that blocks until released (so a test can catch a child mid-task)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self, request: ModelRequest) -> str:
        self.started.set()
        await self.release.wait()
        return f"{last_user_text(request)} TASK_COMPLETE"


async def leftover_tasks() -> list[str]:
    """Tasks still running once finite work (e.g. a shielded write that outlives its cancelled
    caller) has had two seconds to end by itself; the core's long-lived bus committer and telemetry
    subscriber excepted."""
    others = [
        t for t in asyncio.all_tasks()
        if t is not asyncio.current_task() and not t.done()
        and t.get_name() not in ("penguin-bus-commit", "penguin-telemetry")
    ]
    if others:
        await asyncio.wait(others, timeout=2)
    return sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in others if not t.done())


async def test_a_child_inherits_unless_overridden_and_its_context_is_clamped(core: PenguinCore) -> None:
    parent = await core.create_agent(
        "lead", system_prompt="You lead.", model="scripted:echo", model_parameters={"temperature": 0.1},
        tool_policy={"deny": ["run_shell"]}, metadata={"team": "core"}, context_tokens=4000,
    )
    child = await core.spawn_agent("lead")
    assert child.parent_id == "lead" and child.agent_id.startswith("lead-sub-")
    assert (child.system_prompt, child.model, child.tool_policy) == (parent.system_prompt, parent.model,
                                                                     parent.tool_policy)
    assert dict(child.model_parameters) == {"temperature": 0.1}
    assert child.metadata["team"] == "core" and child.context_tokens == 4000
    assert child.metadata["subagent"] == {"parent_id": "lead", "share_session": False, "context_tokens": 4000}

    helper = await core.spawn_agent("lead", "helper", system_prompt="You help.", context_tokens=100_000)
    small = await core.spawn_agent("lead", "small", context_tokens=1000, metadata={"team": "qa"})
    assert (helper.system_prompt, helper.context_tokens) == ("You help.", 4000)
    assert (small.context_tokens, small.metadata["team"]) == (1000, "qa")
    assert sorted(s.agent_id for s in core.list_subagents("lead")) == sorted([child.agent_id, "helper", "small"])


async def test_delegate_and_wait_returns_the_result_with_the_childs_own_usage(core: PenguinCore) -> None:
    await core.create_agent("lead")
    await core.spawn_agent("lead", "kid")
    result = await core.delegate("lead", "kid", "write the notes TASK_COMPLETE", timeout=5)
    assert (result.status, result.result, result.timed_out) == ("completed", "write the notes", False)
    assert result.usage.turns == 1 and result.usage.total_tokens > 0
    assert core.agent_usage("kid").to_dict() == result.usage.to_dict()
    assert core.agent_usage("lead").turns == 0
    handed_back = await core.list_messages(recipient="lead", message_type="delegation")
    assert [(e.sender, e.content, e.metadata["status"]) for e in handed_back] == [
        ("kid", "write the notes", "completed")
    ]
    events = [e.content for e in await core.list_messages(channel="agent:kid", limit=1000)]
    assert "task.running" in events and "turn.completed" in events and events[-1] == "task.completed"


async def test_shared_session_shows_the_parents_history_and_isolated_does_not(core: PenguinCore) -> None:
    seen: dict[str, list[dict[str, Any]]] = {}

    def record(request: ModelRequest) -> str:
        seen[request.agent_id] = list(request.messages)
        return "ok TASK_COMPLETE"

    core.models.register("scripted:record", ScriptedModel(record))
    await core.create_agent("lead")
    await core.chat("the code word is tulip", agent_id="lead")
    await core.spawn_agent("lead", "shared", share_session=True, model="scripted:record")
    await core.spawn_agent("lead", "isolated", model="scripted:record")
    await core.delegate("lead", "shared", "what is the code word?", timeout=5)
    await core.delegate("lead", "isolated", "what is the code word?", timeout=5)
    assert "tulip" in orjson.dumps(seen["shared"]).decode()
    assert "tulip" not in orjson.dumps(seen["isolated"]).decode()


async def test_two_background_children_one_cancelled_nothing_keeps_running(core: PenguinCore) -> None:
    gate = Gate()
    core.models.register("scripted:gate", ScriptedModel(gate))
    await core.create_agent("lead")
    await core.spawn_agent("lead", "fast")
    await core.spawn_agent("lead", "stuck", model="scripted:gate")

    first = await core.delegate("lead", "fast", "summary TASK_COMPLETE", wait=False)
    second = await core.delegate("lead", "stuck", "endless work", wait=False)
    assert {first.status, second.status} <= {"queued", "running"}
    await gate.started.wait()
    assert await core.cancel_subagent("stuck") == [second.task_id]

    results = await core.collect_delegations([first.task_id, second.task_id], timeout=5)
    assert [(r.child_id, r.status, r.result) for r in results] == [
        ("fast", "completed", "summary"), ("stuck", "cancelled", None),
    ]
    handed_back = await core.list_messages(recipient="lead", message_type="delegation")
    assert sorted(e.metadata["status"] for e in handed_back) == ["cancelled", "completed"]
    assert core.agent_status("stuck")["running"] == []
    assert await leftover_tasks() == []


async def test_pause_and_resume_gate_the_childs_work(core: PenguinCore) -> None:
    model = ScriptedModel(lambda r: "done TASK_COMPLETE")
    core.models.register("scripted:count", model)
    await core.create_agent("lead")
    await core.spawn_agent("lead", "kid", model="scripted:count")
    await core.pause_agent("kid")
    pending = await core.delegate("lead", "kid", "later", wait=False)
    waited = await core.delegation_result(pending.task_id, timeout=0.2)
    assert (waited.status, waited.timed_out, model.calls) == ("running", True, 0)
    await core.resume_agent("kid")
    assert (await core.delegation_result(pending.task_id, timeout=5)).status == "completed"
    assert model.calls == 1


async def test_models_use_the_spawn_delegate_and_send_message_tools(core: PenguinCore) -> None:
    def tool_caller(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"tool": tool, "arguments": arguments}

    spawn = tool_caller("spawn_agent", {"child_id": "minion", "model": "scripted:echo"})
    await core.create_agent("boss", model="scripted:tool", model_parameters=spawn)
    spawned = orjson.loads((await core.chat("make a helper", agent_id="boss")).text)
    assert spawned["agent_id"] == "minion" and core.get_agent("minion").parent_id == "boss"

    await core.update_agent("boss", model_parameters=tool_caller(
        "delegate", {"child_id": "minion", "task": "count to three TASK_COMPLETE", "timeout": 5}))
    delegated = orjson.loads((await core.chat("delegate it", agent_id="boss")).text)
    assert (delegated["status"], delegated["result"]) == ("completed", "count to three")

    await core.update_agent("boss", model_parameters=tool_caller(
        "send_message", {"recipient": "minion", "content": "are you there?", "wait": True, "timeout": 5}))
    answered = orjson.loads((await core.chat("ask it", agent_id="boss")).text)
    assert (answered["status"], answered["agent_id"], answered["text"]) == ("processed", "minion", "are you there?")

    await core.update_agent("boss", model_parameters=tool_caller(
        "send_message", {"recipient": "boss", "content": "me", "wait": True}))
    refused = (await core.chat("ask yourself", agent_id="boss")).text
    assert "cannot wait for a reply from yourself" in refused
