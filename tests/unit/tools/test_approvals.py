"""Approval-required tools: the call waits for approve / deny, and no answer in time means denied."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from penguin import PenguinCore, ScriptedModel, script_reply
from penguin.errors import Conflict, NotFound, TurnCancelled, ValidationFailed
from penguin.models.base import ModelRequest
from penguin.tools.approvals import ApprovalBroker, ApprovalState


def writer(req: ModelRequest) -> object:
    last = req.messages[-1]
    if last["role"] == "tool":
        return f"tool said: {last['content']}"
    return script_reply(write_file={"path": "approved.txt", "content": "ok"})


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        c.models.register("scripted:writer", ScriptedModel(writer))
        yield c


async def careful(core: PenguinCore, timeout: float = 10.0) -> None:
    await core.create_agent("careful", model="scripted:writer",
                            tool_policy={"require_approval": ["write_*"], "approval_timeout": timeout})


async def test_approved_call_runs(core: PenguinCore) -> None:
    await careful(core)
    turn = asyncio.create_task(core.chat("save it", agent_id="careful"))
    req = await core.approvals.wait_for_pending("careful", timeout=5)
    assert core.pending_approvals() == [req] and core.pending_approvals("careful") == [req]
    assert core.pending_approvals("someone-else") == []
    assert (req.agent_id, req.tool, orjson.loads(req.arguments), req.state, req.timeout) == (
        "careful", "write_file", {"path": "approved.txt", "content": "ok"}, ApprovalState.PENDING, 10.0
    )
    assert req.to_dict()["expires_at"] == req.created_at + 10.0
    assert not (core.workspace.root / "approved.txt").exists()  # nothing ran yet

    assert core.approve_tool_call(req.id).state is ApprovalState.APPROVED
    result = await turn
    assert result.text == "tool said: wrote 2 bytes to approved.txt"
    assert (core.workspace.root / "approved.txt").read_text() == "ok"
    assert core.pending_approvals() == []
    with pytest.raises(Conflict, match="already approved"):
        core.approve_tool_call(req.id)
    with pytest.raises(NotFound, match="no approval request 'appr_nope'"):
        core.deny_tool_call("appr_nope", "x")
    assert core.tool_stats("careful")["totals"]["allowed"] == 1


async def test_denied_call_goes_back_to_the_model_and_the_turn_continues(core: PenguinCore) -> None:
    await careful(core)
    turn = asyncio.create_task(core.chat("save it", agent_id="careful"))
    req = await core.approvals.wait_for_pending(timeout=5)
    core.deny_tool_call(req.id, "not today")
    result = await turn
    assert result.text == "tool said: error: approval: the call to 'write_file' was denied: not today"
    assert result.tool_calls[0]["denied"] == "approval_denied"
    assert not (core.workspace.root / "approved.txt").exists()
    tool_msg = [m for m in await core.history("careful") if m.role == "tool"][0]
    assert tool_msg.metadata is not None and tool_msg.metadata["denied"] == "approval_denied"
    assert core.tool_stats()["agents"]["careful"]["denied_by_reason"] == {"approval_denied": 1}
    assert core.approvals.get(req.id).reason == "not today"


async def test_no_decision_in_time_means_denied(core: PenguinCore) -> None:
    await careful(core, timeout=0.2)
    turn = asyncio.create_task(core.chat("save it", agent_id="careful"))
    req = await core.approvals.wait_for_pending(timeout=5)
    result = await turn
    assert result.text == (
        "tool said: error: approval: nobody approved 'write_file' within 0.2s, so it was denied; "
        "ask the user before trying again"
    )
    assert result.tool_calls[0]["denied"] == "approval_timeout"
    assert req.state is ApprovalState.EXPIRED and core.pending_approvals() == []
    with pytest.raises(Conflict, match="already expired"):
        core.approve_tool_call(req.id)


async def test_an_approval_denial_does_not_eat_the_task_quota(core: PenguinCore) -> None:
    await core.create_agent("q", model="scripted:writer",
                            tool_policy={"require_approval": ["write_file"], "task_quota": 1})
    first = asyncio.create_task(core.chat("save", agent_id="q", task_id="task-1"))
    core.deny_tool_call((await core.approvals.wait_for_pending(timeout=5)).id)
    assert (await first).tool_calls[0]["denied"] == "approval_denied"
    second = asyncio.create_task(core.chat("save again", agent_id="q", task_id="task-1"))
    core.approve_tool_call((await core.approvals.wait_for_pending(timeout=5)).id)
    assert (await second).tool_calls[0]["error"] is None
    assert core.tools.policy.quota.used("q", "task-1") == {"*": 1, "write_file": 1}


async def test_cancelling_the_turn_withdraws_its_request(core: PenguinCore) -> None:
    await careful(core)
    turn = asyncio.create_task(core.chat("save it", agent_id="careful"))
    req = await core.approvals.wait_for_pending(timeout=5)
    assert core.cancel("careful") != []
    with pytest.raises(TurnCancelled):
        await turn
    assert req.state is ApprovalState.CANCELLED and core.pending_approvals() == []


async def test_stopping_the_core_denies_what_is_pending(tmp_path: Path) -> None:
    core = PenguinCore(data_dir=tmp_path, model="scripted:echo")
    await core.start()
    core.models.register("scripted:writer", ScriptedModel(writer))
    await careful(core)
    turn = asyncio.create_task(core.chat("save it", agent_id="careful"))
    req = await core.approvals.wait_for_pending(timeout=5)
    core.approvals.close()
    assert req.state is ApprovalState.DENIED and req.reason == "Penguin is shutting down"
    assert (await turn).tool_calls[0]["denied"] == "approval_denied"
    await core.stop()


async def test_other_agents_are_not_held_up_by_a_pending_approval(core: PenguinCore) -> None:
    await careful(core)
    await core.create_agent("free", model="scripted:writer")
    waiting = asyncio.create_task(core.chat("save it", agent_id="careful"))
    await core.approvals.wait_for_pending(timeout=5)
    assert (await core.chat("save it", agent_id="free")).text == "tool said: wrote 2 bytes to approved.txt"
    assert not waiting.done()
    core.deny_tool_call(core.pending_approvals()[0].id)
    await waiting


async def test_broker_wait_for_pending_times_out() -> None:
    with pytest.raises(TimeoutError):
        await ApprovalBroker().wait_for_pending(timeout=0.05)


async def test_approval_policy_fields_are_validated(core: PenguinCore) -> None:
    with pytest.raises(ValidationFailed, match="approval_timeout must be a positive number"):
        await core.create_agent("bad", tool_policy={"require_approval": ["*"], "approval_timeout": 0})
