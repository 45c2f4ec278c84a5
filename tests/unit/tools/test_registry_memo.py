"""``schemas_for`` and ``allowed`` are memoised; the memo follows every change of tools or policy."""

from __future__ import annotations

from pathlib import Path

from penguin import PenguinCore, ScriptedModel
from penguin.agents.spec import AgentSpec, ToolPolicy
from penguin.models.base import ModelRequest
from penguin.tools import registry as registry_module
from penguin.tools.registry import ToolRegistry


def ping() -> str:
    """Answer pong."""
    return "pong"


def late() -> str:
    """Registered after the first turn."""
    return "late"


def names(reg: ToolRegistry, spec: AgentSpec) -> list[str]:
    return [s.name for s in reg.schemas_for(spec)]


async def test_a_tool_registered_after_a_turn_is_offered_on_the_next_turn(tmp_path: Path) -> None:
    seen: list[list[str]] = []

    def record(request: ModelRequest) -> str:
        seen.append([t.name for t in request.tools])
        return "ok"

    async with PenguinCore(data_dir=tmp_path, model="scripted:rec") as core:
        core.models.register("scripted:rec", ScriptedModel(record))
        await core.create_agent("a", model="scripted:rec")
        await core.chat("first", agent_id="a")
        assert "late" not in seen[-1]
        core.tools.register(late)
        await core.chat("second", agent_id="a")
        assert "late" in seen[-1]
        core.tools.unregister("late")
        await core.chat("third", agent_id="a")
        assert "late" not in seen[-1]
        core.tools.register(late, agent_id="a")
        await core.chat("fourth", agent_id="a")
        assert "late" in seen[-1]
        await core.update_agent("a", tool_policy={"deny": ["late"]})
        await core.chat("fifth", agent_id="a")
        assert "late" not in seen[-1] and seen[-1]


def test_every_change_of_tools_is_seen() -> None:
    reg = ToolRegistry()
    alice, bob = AgentSpec(agent_id="alice"), AgentSpec(agent_id="bob")
    assert names(reg, alice) == []
    reg.register(ping)
    assert names(reg, alice) == names(reg, bob) == ["ping"]
    reg.register(late, agent_id="alice")
    assert (names(reg, alice), names(reg, bob)) == (["late", "ping"], ["ping"])
    reg.register(late, name="ping", description="shadows the global ping")
    assert [s.description for s in reg.schemas_for(bob)] == ["shadows the global ping"]
    reg.drop_agent("alice")
    assert names(reg, alice) == ["ping"]
    reg.register_all([late])
    assert names(reg, alice) == ["late", "ping"]
    reg.unregister("ping")
    assert names(reg, alice) == ["late"]


def test_policies_are_told_apart_by_value_and_results_are_fresh_lists() -> None:
    reg = ToolRegistry()
    reg.register_all([ping, late])
    reg.register(ping, name="run_shell")
    everything = AgentSpec(agent_id="a")
    assert names(reg, everything) == ["late", "ping"]
    assert names(reg, AgentSpec(agent_id="a", tool_policy=ToolPolicy(shell=True))) == ["late", "ping", "run_shell"]
    assert names(reg, AgentSpec(agent_id="a", tool_policy=ToolPolicy(deny=("l*",)))) == ["ping"]
    assert names(reg, AgentSpec(agent_id="a", tool_policy=ToolPolicy(allow=("l*",)))) == ["late"]
    assert not reg.allowed(AgentSpec(agent_id="a", tool_policy=ToolPolicy(allow=("l*",))), "ping")
    reg.schemas_for(everything).clear()  # a caller's list is its own
    assert names(reg, everything) == ["late", "ping"]
    # A policy built with lists (unhashable) is still answered, just not memoised.
    listed = AgentSpec(agent_id="a", tool_policy=ToolPolicy(allow=["p*"], deny=[]))  # type: ignore[arg-type]
    assert names(reg, listed) == ["ping"] and reg.allowed(listed, "ping") and not reg.allowed(listed, "late")


def test_the_memos_are_bounded() -> None:
    reg = ToolRegistry()
    reg.register(ping)
    for i in range(registry_module._MEMO_LIMIT + 10):
        spec = AgentSpec(agent_id=f"a{i}", tool_policy=ToolPolicy(allow=(f"p{i}*", "ping")))
        assert names(reg, spec) == ["ping"]
        assert reg.allowed(spec, f"tool{i}") is False
    assert len(reg._schemas_memo) <= registry_module._MEMO_LIMIT
    assert len(reg._allowed_memo) <= registry_module._MEMO_LIMIT
