"""``MemoryStore`` on the keyword path (no embedder): CRUD, scopes, filters, persistence."""

from __future__ import annotations

import time

import pytest

from penguin.errors import Conflict, InvalidAgentId, ValidationFailed
from penguin.memory import Memory, MemoryNotFound, MemoryStats, MemoryStore
from penguin.storage.database import Database


async def test_add_then_get_returns_the_memory_with_its_provenance(store: MemoryStore) -> None:
    before = time.time()
    memory_id = await store.add(
        "The staging database password rotates every Tuesday at 04:00 UTC.",
        {"source": "runbook"},
        author="ops",
        tags=["ops", "security"],
        source_conversation_id="conv_1",
        source_message_id="msg_1",
    )
    memory = await store.get(memory_id, agent_id="support")
    assert memory == Memory(
        id=memory_id,
        text="The staging database password rotates every Tuesday at 04:00 UTC.",
        author="ops",
        scope="shared",
        tags=("ops", "security"),
        metadata={"source": "runbook"},
        source_conversation_id="conv_1",
        source_message_id="msg_1",
        created_at=memory.created_at,
        updated_at=memory.created_at,
        tenant_id=memory.tenant_id,
    )
    assert before <= memory.created_at <= time.time()
    assert memory_id.startswith("mem_")


async def test_search_ranks_the_best_keyword_match_first_with_provenance(store: MemoryStore) -> None:
    await store.add("Invoices are generated on the first business day of each month.", author="finance")
    wanted = await store.add(
        "Refund requests above 500 dollars need sign-off from Priya in finance.",
        author="support",
        source_conversation_id="conv_9",
    )
    await store.add("The holiday party is on 14 December.", author="people")
    hits = await store.search("who signs off refund requests", agent_id="sales")
    assert [h.memory.id for h in hits] == [wanted]
    assert hits[0].memory.author == "support"
    assert hits[0].memory.source_conversation_id == "conv_9"
    assert hits[0].keyword_rank == 1 and hits[0].vector_rank is None and hits[0].score > 0


async def test_identifiers_match_as_phrases_not_as_their_parts(store: MemoryStore) -> None:
    exact = await store.add("Acme reported truncated CSV exports (ticket SUP-1182).", author="support")
    await store.add("Ticket SUP-2000 is about slow dashboards; see also 1182 other reports.", author="support")
    hits = await store.search("SUP-1182", agent_id="support")
    assert [h.memory.id for h in hits] == [exact]


async def test_private_memories_are_invisible_to_other_agents(store: MemoryStore) -> None:
    shared = await store.add("Deploys are frozen on Thursday before a release.", author="release")
    private = await store.add(
        "Release agent note: deploys frozen, remember to ping QA.", author="release", scope="agent"
    )

    assert {h.memory.id for h in await store.search("deploys frozen", agent_id="release")} == {shared, private}
    assert [h.memory.id for h in await store.search("deploys frozen", agent_id="support")] == [shared]
    assert [m.id for m in await store.list(agent_id="support")] == [shared]
    with pytest.raises(MemoryNotFound):
        await store.get(private, agent_id="support")
    with pytest.raises(MemoryNotFound):
        await store.delete(private, agent_id="support")
    with pytest.raises(MemoryNotFound):
        await store.update(private, agent_id="support", text="overwritten")
    assert (await store.get(private, agent_id="release")).text.startswith("Release agent note")


async def test_filters_author_scope_tags_and_time(store: MemoryStore) -> None:
    a = await store.add("Billing alert fired for the gateway.", author="ops", tags=["billing", "alert"])
    b = await store.add("Billing migration planned for March.", author="engineering", tags=["billing"])
    c = await store.add("Billing note for myself.", author="ops", scope="agent", tags=["billing", "alert"])
    created = {m.id: m.created_at for m in await store.list(agent_id="ops")}

    async def ids(**filters: object) -> set[str]:
        return {h.memory.id for h in await store.search("billing", agent_id="ops", **filters)}  # type: ignore[arg-type]

    assert await ids() == {a, b, c}
    assert await ids(author="engineering") == {b}
    assert await ids(scope="agent") == {c}
    assert await ids(tags=["billing", "alert"]) == {a, c}
    assert await ids(tags=["alert"], scope="shared") == {a}
    assert await ids(since=created[b]) == {b, c}
    assert await ids(until=created[b]) == {a}
    assert {m.id for m in await store.list(agent_id="ops", tags=["alert"])} == {a, c}


async def test_list_is_newest_first_and_pages_with_before(store: MemoryStore) -> None:
    ids = [await store.add(f"memory number {i}", author="ops") for i in range(5)]
    first = await store.list(agent_id="ops", limit=2)
    second = await store.list(agent_id="ops", limit=2, before=first[-1].id)
    rest = await store.list(agent_id="ops", limit=10, before=second[-1].id)
    assert [m.id for m in first + second + rest] == ids[::-1]


async def test_update_reindexes_text_and_keeps_identity(store: MemoryStore) -> None:
    memory_id = await store.add("The office wifi password is penguin42.", author="people", tags=["office"])
    updated = await store.update(memory_id, agent_id="support", text="The office wifi password is walrus7.")
    assert updated.id == memory_id and updated.author == "people" and updated.tags == ("office",)
    assert updated.updated_at >= updated.created_at
    assert await store.search("penguin42", agent_id="support") == []
    assert [h.memory.id for h in await store.search("walrus7", agent_id="support")] == [memory_id]
    assert await store.get(memory_id, agent_id="people") == updated


async def test_only_the_author_changes_the_scope(store: MemoryStore) -> None:
    memory_id = await store.add("Shared fact about the API.", author="engineering")
    with pytest.raises(Conflict):
        await store.update(memory_id, agent_id="support", scope="agent")
    made_private = await store.update(memory_id, agent_id="engineering", scope="agent")
    assert made_private.scope == "agent"
    assert await store.search("shared fact", agent_id="support") == []


async def test_delete_removes_from_every_read_path(store: MemoryStore) -> None:
    memory_id = await store.add("Temporary note about the canary deploy.", author="ops", tags=["canary"])
    deleted = await store.delete(memory_id, agent_id="ops")
    assert deleted.id == memory_id
    assert await store.search("canary deploy", agent_id="ops") == []
    assert await store.list(agent_id="ops", tags=["canary"]) == []
    with pytest.raises(MemoryNotFound):
        await store.get(memory_id, agent_id="ops")


async def test_stats_count_scopes_and_authors_and_report_the_embedder(store: MemoryStore) -> None:
    await store.add("one", author="ops")
    await store.add("two", author="ops", scope="agent")
    await store.add("three", author="sales")
    stats = await store.stats()
    assert stats == MemoryStats(
        total=3,
        shared=2,
        private=1,
        by_author={"ops": 2, "sales": 1},
        embedder="none",
        dimension=None,
        vectors=0,
        pending_vectors=0,
        keyword_index=stats.keyword_index,
        last_error=None,
    )
    assert stats.keyword_index in ("fts5", "tsvector")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.add("   ", author="ops"), "text"),
        (lambda s: s.add("x", author="ops", scope="public"), "scope"),
        (lambda s: s.add("x", author="ops", tags="ops"), "tags"),
        (lambda s: s.add("x", author="ops", tags=["a" * 65]), "tags"),
        (lambda s: s.add("x", {"when": object()}, author="ops"), "metadata"),
        (lambda s: s.search("x", 0, agent_id="ops"), "k"),
        (lambda s: s.search("", agent_id="ops"), "query"),
        (lambda s: s.search("x", agent_id="ops", mode="vector"), "mode"),
        (lambda s: s.search("x", agent_id="ops", since="yesterday"), "since"),
        (lambda s: s.list(agent_id="ops", limit=0), "limit"),
    ],
)
async def test_bad_input_names_the_field(sqlite_store: MemoryStore, call: object, field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        await call(sqlite_store)  # type: ignore[operator]
    assert info.value.field == field


async def test_agent_ids_follow_the_id_rule(sqlite_store: MemoryStore) -> None:
    with pytest.raises(InvalidAgentId):
        await sqlite_store.add("x", author="not an id!")
    with pytest.raises(InvalidAgentId):
        await sqlite_store.search("x", agent_id="../etc")


async def test_memories_persist_across_restarts_and_tenants_stay_apart(db: Database, tenant: str) -> None:
    first = MemoryStore(db, tenant_id=tenant)
    await first.start()
    memory_id = await first.add("Halvorsen Logistics renews on 1 March.", author="sales")
    await first.aclose()

    again = MemoryStore(db, tenant_id=tenant)
    await again.start()
    assert [h.memory.id for h in await again.search("Halvorsen renews", agent_id="support")] == [memory_id]
    await again.aclose()

    other_tenant = MemoryStore(db, tenant_id=f"{tenant}-other")
    await other_tenant.start()
    assert await other_tenant.search("Halvorsen renews", agent_id="support") == []
    with pytest.raises(MemoryNotFound):
        await other_tenant.get(memory_id, agent_id="sales")
    assert (await other_tenant.stats()).total == 0
    await other_tenant.aclose()
