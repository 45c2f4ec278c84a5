"""Embedders: the hash test double, the OpenAI-compatible wire client, MiniLM, and deferred vectors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from embedding_server import EmbeddingServer, letter_vector

from penguin.config import Settings
from penguin.errors import ModelError, ValidationFailed
from penguin.memory import HashEmbedder, MemoryStore, MiniLMEmbedder, OpenAIEmbedder, make_embedder
from penguin.storage.database import Database


@pytest.fixture
async def server() -> AsyncIterator[EmbeddingServer]:
    fake = EmbeddingServer()
    await fake.start()
    yield fake
    await fake.stop()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


async def test_hash_embedder_is_deterministic_normalised_and_word_sensitive() -> None:
    embedder = HashEmbedder(dimension=64)
    vectors = await embedder.embed(["billing gateway timeout", "billing gateway timeout", "holiday party"])
    assert vectors.shape == (3, 64) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.array_equal(vectors[0], vectors[1])
    assert cosine(vectors[0], vectors[2]) < 0.5


async def test_openai_embedder_batches_sorts_by_index_and_authenticates(server: EmbeddingServer) -> None:
    embedder = OpenAIEmbedder("text-embedding-3-small", base_url=server.url, api_key="sk-test", retries=0)
    texts = [f"text {chr(97 + i % 26)}" for i in range(OpenAIEmbedder.BATCH + 2)]
    vectors = await embedder.embed(texts)
    await embedder.aclose()
    assert [len(r["input"]) for r in server.requests] == [OpenAIEmbedder.BATCH, 2]
    assert server.requests[0]["model"] == "text-embedding-3-small"
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    expected = np.asarray(letter_vector(texts[-1], 8), dtype=np.float32)
    assert np.allclose(vectors[-1], expected / np.linalg.norm(expected))
    assert embedder.dimension == 8 and embedder.name == "openai:text-embedding-3-small"


async def test_openai_embedder_retries_server_errors_and_reports_client_errors(server: EmbeddingServer) -> None:
    embedder = OpenAIEmbedder("m", base_url=server.url, api_key=None, retries=1, backoff=0.01)
    server.failures = [503]
    assert (await embedder.embed(["ok"])).shape == (1, 8)
    server.failures = [401]
    with pytest.raises(ModelError) as info:
        await embedder.embed(["no"])
    await embedder.aclose()
    assert info.value.status_code == 401 and "embedding backend down" in info.value.detail


def test_make_embedder_reads_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert make_embedder("none", settings) is None
    assert isinstance(make_embedder("minilm", settings), MiniLMEmbedder)
    assert isinstance(make_embedder("hash", settings), HashEmbedder)
    remote = make_embedder("openai:text-embedding-3-small", settings)
    assert isinstance(remote, OpenAIEmbedder) and remote.model == "text-embedding-3-small"
    with pytest.raises(ValidationFailed) as info:
        make_embedder("word2vec", settings)
    assert info.value.field == "memory_embedder"


async def test_a_failing_embedder_defers_vectors_and_the_backfill_catches_up(
    tmp_path: Path, server: EmbeddingServer
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await db.create_schema()
    store = MemoryStore(
        db, tenant_id="default", embedder=OpenAIEmbedder("m", base_url=server.url, api_key=None, retries=0)
    )
    await store.start()
    server.failures = [500, 500]  # the add, then the first backfill attempt
    memory_id = await store.add("zebra zebra zebra", author="ops")
    stats = await store.stats()
    assert (stats.pending_vectors, stats.vectors, stats.last_error) == (
        1,
        0,
        "openai (HTTP 500): embedding backend down",
    )
    # Keyword search works at once; vector search catches up once the embedder recovers.
    assert [h.memory.id for h in await store.search("zebra", agent_id="ops", mode="keyword")] == [memory_id]
    async with asyncio.timeout(10):
        await store.wait_indexed()
    stats = await store.stats()
    assert (stats.pending_vectors, stats.vectors, stats.last_error, stats.dimension) == (0, 1, None, 8)
    hits = await store.search("zebra", agent_id="ops", mode="vector")
    assert [(h.memory.id, h.vector_rank) for h in hits] == [(memory_id, 1)]
    await store.aclose()

    # A restart loads the stored vector instead of embedding again.
    before = len(server.requests)
    again = MemoryStore(db, tenant_id="default", embedder=OpenAIEmbedder("m", base_url=server.url, api_key=None))
    await again.start()
    assert ((await again.stats()).vectors, len(server.requests)) == (1, before)
    await again.aclose()
    await db.aclose()


@pytest.mark.local_model
async def test_minilm_embeds_paraphrases_close_and_finds_them_in_hybrid_search(tmp_path: Path) -> None:
    embedder = MiniLMEmbedder()
    vectors = await embedder.embed(
        [
            "Refunds above 500 dollars need sign-off from finance.",
            "Who approves giving money back to a buyer?",
            "The office holiday party is in December.",
        ]
    )
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[1], vectors[2]) + 0.2

    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await db.create_schema()
    store = MemoryStore(db, tenant_id="default", embedder=embedder)
    await store.start()
    refund = await store.add("Refunds above 500 dollars need sign-off from finance.", author="support")
    await store.add("The office holiday party is in December.", author="people")
    ticket = await store.add("Acme reported truncated exports in ticket SUP-1182.", author="support")
    paraphrase = await store.search("Who approves giving money back to a buyer?", 1, agent_id="sales")
    assert [(h.memory.id, h.keyword_rank) for h in paraphrase] == [(refund, None)]
    identifier = await store.search("SUP-1182", 1, agent_id="sales")
    assert [(h.memory.id, h.keyword_rank) for h in identifier] == [(ticket, 1)]
    assert (await store.stats()).embedder == "minilm"
    await store.aclose()
    await db.aclose()
