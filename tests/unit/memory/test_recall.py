"""Cross-agent recall: the memory tools, and automatic recall into the context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from penguin import PenguinCore
from penguin.memory.hooks import RECALL_HEADER
from penguin.models.base import ModelRequest
from penguin.models.scripted import ScriptedModel


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        yield c


async def use_tool(core: PenguinCore, agent_id: str, tool: str, arguments: dict[str, Any]) -> Any:
    """Have ``agent_id`` call one tool through a real turn (``scripted:tool``) and return its result."""
    await core.update_agent(agent_id, model="scripted:tool", model_parameters={"tool": tool, "arguments": arguments})
    result = await core.chat(f"please use {tool}", agent_id=agent_id)
    assert [c["name"] for c in result.tool_calls] == [tool] and result.tool_calls[0]["error"] is None
    return orjson.loads(result.text)


async def test_a_fact_one_agent_shares_is_found_by_another_with_its_author(core: PenguinCore) -> None:
    for agent in ("alpha", "beta"):
        await core.create_agent(agent)
    added = await use_tool(
        core, "alpha", "memory_add", {"text": "The VPN gateway moved to vpn2.example.net", "tags": ["infra"]}
    )
    assert added["scope"] == "shared"
    found = await use_tool(core, "beta", "memory_search", {"query": "where is the VPN gateway", "k": 3})
    assert [(f["id"], f["author"], f["scope"], f["tags"]) for f in found] == [
        (added["id"], "alpha", "shared", ["infra"])
    ]
    assert found[0]["text"] == "The VPN gateway moved to vpn2.example.net"
    conversation = await core.conversations.default_for("alpha")
    assert found[0]["source_conversation_id"] == conversation.id


async def test_an_agents_private_memory_never_reaches_another_agent(core: PenguinCore) -> None:
    for agent in ("alpha", "beta"):
        await core.create_agent(agent)
    mine = await use_tool(core, "alpha", "memory_add", {"text": "Codename Bluefin is the Q3 launch", "scope": "agent"})
    assert await use_tool(core, "beta", "memory_search", {"query": "codename Bluefin launch"}) == []
    assert [f["id"] for f in await use_tool(core, "alpha", "memory_search", {"query": "codename Bluefin"})] == [
        mine["id"]
    ]


class Recorder:
    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    def __call__(self, request: ModelRequest) -> str:
        self.requests.append(request)
        return "ok"


async def test_auto_recall_puts_relevant_visible_memories_before_the_latest_message(core: PenguinCore) -> None:
    recorder = Recorder()
    core.models.register("scripted:recorder", ScriptedModel(recorder, name="scripted:recorder"))
    await core.memory_add("The VPN gateway moved to vpn2.example.net", agent_id="alpha")
    await core.memory_add("alpha's own note: the VPN root password is hunter2", agent_id="alpha", scope="agent")
    await core.memory_add("Lunch is served at noon on Fridays", agent_id="alpha")
    await core.create_agent(
        "gamma", model="scripted:recorder", system_prompt="You are gamma.", metadata={"memory_recall_k": 2}
    )
    await core.chat("hello", agent_id="gamma")
    await core.chat("Which host is the VPN gateway on now?", agent_id="gamma")

    messages = recorder.requests[-1].messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "system", "user"]
    recall = messages[-2]["content"]
    assert recall.startswith(RECALL_HEADER)
    assert "[alpha, " in recall and "vpn2.example.net" in recall
    assert "hunter2" not in recall and "Lunch" not in recall
    assert messages[-1]["content"] == "Which host is the VPN gateway on now?"


async def test_recall_is_off_by_default_and_the_setting_turns_it_on(tmp_path: Path) -> None:
    for k, expected in ((0, False), (1, True)):
        async with PenguinCore(data_dir=tmp_path / str(k), model="scripted:echo", memory_auto_recall_k=k) as core:
            recorder = Recorder()
            core.models.register("scripted:recorder", ScriptedModel(recorder, name="scripted:recorder"))
            await core.memory_add("The VPN gateway moved to vpn2.example.net", agent_id="alpha")
            await core.create_agent("delta", model="scripted:recorder")
            await core.chat("Which host is the VPN gateway on?", agent_id="delta")
            systems = [m["content"] for m in recorder.requests[-1].messages if m["role"] == "system"]
            assert any(c.startswith(RECALL_HEADER) for c in systems) is expected
            # An agent's own metadata wins over the setting.
            await core.create_agent("epsilon", model="scripted:recorder", metadata={"memory_recall_k": 0})
            await core.chat("Which host is the VPN gateway on?", agent_id="epsilon")
            assert not [m for m in recorder.requests[-1].messages if m["role"] == "system"]
