"""The core's memory methods (the surface the REST API and clients wrap).

These run on SQLite only: the store beneath them is tested on both databases, and a second core
on the shared PostgreSQL test database would collide on the ``agents`` primary key (agent_id
without tenant_id).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import penguin.memory
from penguin import PenguinCore
from penguin.memory import MemoryNotFound


@pytest.fixture
async def core(tmp_path: Path, tenant: str) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, tenant_id=tenant, model="scripted:echo") as c:
        yield c


async def test_core_memory_methods_round_trip(core: PenguinCore, tenant: str) -> None:
    added = await core.memory_add(
        "Halvorsen Logistics renews on 1 March",
        agent_id="sales",
        tags=["customer"],
        metadata={"crm": "HL-1"},
        source_conversation_id="conv_x",
        source_message_id="msg_x",
    )
    assert (added.author, added.scope, added.tags, added.tenant_id) == ("sales", "shared", ("customer",), tenant)
    assert await core.memory_get(added.id, agent_id="support") == added
    hits = await core.memory_search("when does Halvorsen renew", agent_id="support", k=3)
    assert [(h.memory, h.keyword_rank) for h in hits] == [(added, 1)]
    assert hits[0].to_dict()["source_message_id"] == "msg_x"
    assert await core.memory_list(agent_id="support", tags=["customer"]) == [added]
    changed = await core.memory_update(added.id, agent_id="support", text="Halvorsen Logistics renews on 1 April")
    assert changed.text.endswith("1 April") and changed.author == "sales"
    stats = await core.memory_stats()
    assert (stats.total, stats.shared, stats.by_author, stats.embedder) == (1, 1, {"sales": 1}, "none")
    assert (await core.memory_delete(added.id, agent_id="support")).id == added.id
    with pytest.raises(MemoryNotFound):
        await core.memory_get(added.id)


async def test_no_agent_id_means_the_default_persona(core: PenguinCore) -> None:
    private = await core.memory_add("default's private note", scope="agent")
    assert private.author == "default"
    assert [h.memory.id for h in await core.memory_search("private note")] == [private.id]
    assert await core.memory_search("private note", agent_id="other") == []


async def test_memory_survives_a_core_restart(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        added = await core.memory_add("The release train leaves on Thursdays", agent_id="release")
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        assert [h.memory for h in await core.memory_search("release train", agent_id="qa")] == [added]


def test_the_public_surface_is_pinned() -> None:
    assert sorted(penguin.memory.__all__) == [
        "Compactor",
        "Embedder",
        "HashEmbedder",
        "Memory",
        "MemoryHit",
        "MemoryHooks",
        "MemoryNotFound",
        "MemoryStats",
        "MemoryStore",
        "MiniLMEmbedder",
        "NewMemory",
        "OpenAIEmbedder",
        "Ranking",
        "RecallBlock",
        "Scope",
        "SearchFilter",
        "SearchMode",
        "make_embedder",
        "memory_tools",
        "reciprocal_rank_fusion",
    ]
    for name in penguin.memory.__all__:
        assert getattr(penguin.memory, name) is not None
