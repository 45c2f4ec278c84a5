"""The retrieval set and its evaluation script still work (with the hash embedder; no model)."""

from __future__ import annotations

from benchmarks.memory_eval import evaluate, load


def test_the_labeled_set_is_well_formed() -> None:
    data = load()
    ids = {d["id"] for d in data["documents"]}
    assert len(ids) == len(data["documents"]) >= 50
    assert len(data["queries"]) >= 20
    assert {q["kind"] for q in data["queries"]} == {"keyword", "paraphrase", "mixed"}
    assert all(q["relevant"] and set(q["relevant"]) <= ids for q in data["queries"])


async def test_keyword_search_finds_every_identifier_query_and_no_paraphrase() -> None:
    scores, _ = await evaluate("hash")
    by_mode = {s.mode: s for s in scores}
    assert set(by_mode) == {"keyword", "vector", "hybrid"}
    assert by_mode["keyword"].by_kind["keyword"] == 1.0
    assert by_mode["keyword"].by_kind["paraphrase"] == 0.0
    assert by_mode["hybrid"].by_kind["keyword"] == 1.0
