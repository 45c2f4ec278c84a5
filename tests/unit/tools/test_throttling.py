"""A model that calls tools 100 times in one task hits the rate limit and the quotas exactly."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path

import orjson

from penguin import ModelResponse, PenguinCore, ScriptedModel, TaskStatus, ToolCall
from penguin.models.base import ModelRequest

CALLS = 100


def hundred_calls(plan: list[str]) -> ScriptedModel:
    """A model that makes one tool call per model call, following ``plan``, then answers."""
    step = itertools.count()

    def script(req: ModelRequest) -> ModelResponse | str:
        n = next(step)
        if n >= len(plan):
            return "done"
        args = {"path": "notes.txt"} if plan[n] == "read_file" else {"path": "."}
        return ModelResponse(text="", tool_calls=(
            ToolCall(id=f"call_{n}", name=plan[n], arguments=orjson.dumps(args).decode()),
        ))

    return ScriptedModel(script)


async def test_rate_limit_over_100_calls_in_one_turn(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        (core.workspace.root / "notes.txt").write_text("remember")
        core.models.register("scripted:hundred", hundred_calls(["read_file"] * CALLS))
        await core.create_agent("busy", model="scripted:hundred", tool_policy={"rate_per_minute": 30})
        started = time.perf_counter()
        result = await core.chat("go", agent_id="busy", task_id="task-rate", max_iterations=CALLS + 1)
        elapsed = time.perf_counter() - started
        assert result.text == "done" and len(result.tool_calls) == CALLS
        denied = [c["denied"] for c in result.tool_calls]
        assert denied == [None] * 30 + ["rate_limit"] * 70  # the first 30 run, every later one is refused
        assert [c["result"] for c in result.tool_calls[:30]] == ["remember"] * 30
        assert result.tool_calls[30]["result"].startswith(
            "error: rate limit: agent 'busy' may make 30 tool call(s) per minute; retry in"
        )
        stats = core.tool_stats("busy")["agents"]["busy"]
        assert (stats["allowed"], stats["denied"], stats["denied_by_reason"]) == (30, 70, {"rate_limit": 70})
        stored = [m.metadata["denied"] for m in await core.history("busy") if m.role == "tool" and m.metadata]
        assert Counter(stored) == Counter({None: 30, "rate_limit": 70})
        assert elapsed < 10, f"100 tool calls took {elapsed:.2f}s"


async def test_task_quota_over_100_calls_in_a_real_task(tmp_path: Path) -> None:
    plan = ["read_file"] * 50 + ["list_dir"] * 50
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", max_iterations=CALLS + 1) as core:
        (core.workspace.root / "notes.txt").write_text("remember")
        core.models.register("scripted:plan", hundred_calls(plan))
        await core.create_agent("worker", model="scripted:plan",
                                tool_policy={"task_quota": 25, "tool_task_quota": {"read_*": 10}})
        task = await core.run_task("use your tools", agent_id="worker", max_iterations=1)
        task = await core.wait_task(task.id, timeout=30)
        assert task.status is TaskStatus.COMPLETED and task.result == "done"

        tool_msgs = [m for m in await core.history(conversation_id=task.conversation_id) if m.role == "tool"]
        outcome = [(m.name, (m.metadata or {})["denied"]) for m in tool_msgs]
        assert outcome == (
            [("read_file", None)] * 10 + [("read_file", "tool_quota")] * 40
            + [("list_dir", None)] * 15 + [("list_dir", "quota")] * 35
        )
        assert core.tools.policy.quota.used("worker", task.id) == {"*": 25, "read_file": 10, "list_dir": 15}
        totals = core.tool_stats()["totals"]
        assert (totals["allowed"], totals["denied"], totals["denied_by_reason"]) == (
            25, 75, {"quota": 35, "tool_quota": 40}
        )
