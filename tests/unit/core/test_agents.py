from __future__ import annotations

from pathlib import Path

import pytest

from penguin import PenguinCore
from penguin.errors import (
    AgentExists,
    AgentNotFound,
    Conflict,
    InvalidAgentId,
    InvalidModelString,
    ValidationFailed,
)


async def test_default_agent_always_exists(core: PenguinCore) -> None:
    assert [a.agent_id for a in core.list_agents()] == ["default"]
    with pytest.raises(Conflict):
        await core.remove_agent("default")


async def test_create_get_list_update_remove(core: PenguinCore) -> None:
    spec = await core.create_agent(
        "support",
        system_prompt="You help customers.",
        roles=["triage"],
        model="scripted:echo",
        model_parameters={"temperature": 0.1},
        tool_policy={"deny": ["run_*"], "rate_per_minute": 30},
        metadata={"team": "cx"},
    )
    assert spec.agent_id == "support" and spec.roles == ("triage",)
    assert spec.tool_policy.deny == ("run_*",) and spec.tool_policy.rate_per_minute == 30
    assert core.get_agent("support") == spec
    assert [a.agent_id for a in core.list_agents(role="triage")] == ["support"]
    updated = await core.update_agent("support", system_prompt="New persona", paused=True)
    assert updated.system_prompt == "New persona" and updated.paused
    assert updated.created_at == spec.created_at and updated.updated_at >= spec.updated_at
    await core.remove_agent("support")
    with pytest.raises(AgentNotFound):
        core.get_agent("support")


async def test_bad_input(core: PenguinCore) -> None:
    with pytest.raises(InvalidAgentId):
        await core.create_agent("no spaces")
    await core.create_agent("a1")
    with pytest.raises(AgentExists):
        await core.create_agent("a1")
    with pytest.raises(InvalidModelString):
        await core.create_agent("a2", model="gpt-4o")  # no provider
    with pytest.raises(InvalidModelString, match="unknown model provider"):
        await core.create_agent("a2", model="nosuch:model")
    with pytest.raises(InvalidModelString):
        await core.create_agent("a2", model="scripted:nosuchscript")
    with pytest.raises(ValidationFailed, match="unknown agent field"):
        await core.create_agent("a2", colour="blue")
    with pytest.raises(ValidationFailed):
        await core.create_agent("a2", roles="planner")  # must be a list
    with pytest.raises(ValidationFailed):
        await core.create_agent("a2", tool_policy={"rate_per_minute": -1})
    with pytest.raises(ValidationFailed):
        await core.create_agent("a2", tool_policy={"bogus": 1})
    with pytest.raises(AgentNotFound):
        await core.create_agent("a2", parent_id="ghost")
    with pytest.raises(AgentNotFound):
        await core.update_agent("ghost", paused=True)
    with pytest.raises(Conflict):
        await core.update_agent("a1", parent_id="a1")
    assert "a2" not in core.agents  # nothing half-created


async def test_agents_persist_across_cores(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        await core.create_agent(
            "release",
            system_prompt="Writes changelogs",
            model="scripted:tool",
            roles=["writer"],
            tool_policy={"shell": True},
            metadata={"k": [1, 2]},
        )
        before = core.get_agent("release")
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        assert core.get_agent("release") == before
        assert {a.agent_id for a in core.list_agents()} == {"default", "release"}


async def test_auto_create_off(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", auto_create_agents=False) as core:
        with pytest.raises(AgentNotFound, match="auto-create is off"):
            await core.chat("hi", agent_id="ghost")
        assert "ghost" not in core.agents


async def test_auto_create_on_first_chat(core: PenguinCore) -> None:
    first = await core.chat("hi", agent_id="engineering")
    second = await core.chat("again", agent_id="engineering")
    assert first.created and not second.created
    assert first.conversation_id == second.conversation_id


async def test_tenants_share_a_database_without_colliding(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo", tenant_id="acme") as a:
        await a.create_agent("support", system_prompt="acme support")
        await a.chat("hello from acme", agent_id="support")
    async with PenguinCore(
        data_dir=tmp_path, database_url=database_url, model="scripted:echo", tenant_id="globex"
    ) as b:
        assert [s.agent_id for s in b.list_agents()] == ["default"]
        await b.create_agent("support", system_prompt="globex support")
        assert await b.history("support") == []
        await b.remove_agent("support")
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo", tenant_id="acme") as a:
        assert a.get_agent("support").system_prompt == "acme support"
        assert [m.content for m in await a.history("support")] == ["hello from acme"] * 2


async def test_create_with_exist_ok_is_an_upsert(core: PenguinCore) -> None:
    first = await core.create_agent("upsert", system_prompt="v1", roles=["writer"])
    with pytest.raises(AgentExists) as taken:
        await core.create_agent("upsert", system_prompt="v2")
    assert "PATCH" not in taken.value.detail and "exist_ok" in taken.value.detail
    again = await core.create_agent("upsert", exist_ok=True, system_prompt="v2")
    assert (again.system_prompt, again.roles, again.created_at) == ("v2", ("writer",), first.created_at)
    assert await core.create_agent("upsert", exist_ok=True) == again  # no fields: returned as it is
    fresh = await core.create_agent("brand-new", exist_ok=True, system_prompt="new")
    assert fresh.system_prompt == "new"
    with pytest.raises(ValidationFailed, match="did you mean 'system_prompt'"):
        await core.create_agent("upsert", exist_ok=True, system_promt="typo")
