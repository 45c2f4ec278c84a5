"""Role assignments, fair round-robin, and agent_role resolution for tasks."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from penguin import PenguinCore
from penguin.errors import AgentNotFound


async def test_round_robin_over_three_agents_is_fair(core: PenguinCore) -> None:
    for agent_id in ("w1", "w2", "w3"):
        await core.create_agent(agent_id)
    assert await core.assign_role("worker", ["w1", "w2", "w3"]) == ["w1", "w2", "w3"]
    answers = [await core.round_robin("worker", f"job {i}") for i in range(30)]
    assert all(a.ok for a in answers)
    assert Counter(a.agent_id for a in answers) == {"w1": 10, "w2": 10, "w3": 10}
    assert [a.text for a in answers[:3]] == ["job 0", "job 1", "job 2"]
    for agent_id in ("w1", "w2", "w3"):
        assert len([m for m in await core.history(agent_id) if m.role == "user"]) == 10


async def test_round_robin_skips_paused_agents(core: PenguinCore) -> None:
    for agent_id in ("w1", "w2"):
        await core.create_agent(agent_id)
    await core.assign_role("worker", ["w1", "w2"])
    await core.pause_agent("w1")
    picked = [(await core.round_robin("worker", "x", timeout=5)).agent_id for _ in range(3)]
    assert picked == ["w2", "w2", "w2"]


async def test_assignments_and_cursor_persist(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        for agent_id in ("p1", "p2", "p3"):
            await core.create_agent(agent_id)
        await core.assign_role("planner", ["p1", "p2", "p3"])
        assert core.agent_for_role("planner").agent_id == "p1"
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        assert core.roles() == {"planner": ["p1", "p2", "p3"]}
        assert [core.agent_for_role("planner").agent_id for _ in range(3)] == ["p2", "p3", "p1"]


async def test_tasks_pick_their_agent_through_the_coordinator(core: PenguinCore) -> None:
    await core.create_agent("spec-qa", roles=["qa"])  # listed in its spec, not assigned
    for agent_id in ("qa-a", "qa-b"):
        await core.create_agent(agent_id)
    assert core.agent_for_role("qa").agent_id == "spec-qa"
    await core.assign_role("qa", ["qa-a", "qa-b"])
    first = await core.run_task("verify TASK_COMPLETE", agent_role="qa", max_iterations=1)
    second = await core.run_task("verify TASK_COMPLETE", context={"agent_role": "qa"}, max_iterations=1)
    assert (first.agent_id, second.agent_id) == ("qa-a", "qa-b")
    assert (await core.wait_task(first.id, 5)).status.value == "completed"
    await core.wait_task(second.id, 5)


async def test_roles_follow_agent_removal_and_reject_unknown_agents(core: PenguinCore) -> None:
    await core.create_agent("only")
    await core.assign_role("solo", ["only"])
    with pytest.raises(AgentNotFound):
        await core.assign_role("solo", ["only", "ghost"])
    await core.remove_agent("only")
    assert core.roles() == {}
    answer = await core.round_robin("solo", "anyone?")
    assert answer.status == "failed" and isinstance(answer.error, AgentNotFound)
    assert await core.unassign_role("solo") == []
