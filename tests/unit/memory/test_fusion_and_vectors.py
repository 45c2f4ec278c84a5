"""Reciprocal rank fusion and the in-memory vector index."""

from __future__ import annotations

import numpy as np
import pytest

from penguin.memory import Ranking, SearchFilter, reciprocal_rank_fusion
from penguin.memory.vectors import VectorIndex


def test_fusion_rewards_agreement_and_keeps_list_order_on_ties() -> None:
    fused = reciprocal_rank_fusion([Ranking(ids=["a", "b", "c"]), Ranking(ids=["c", "d"])], k=4)
    # b ties with d (same best rank, 2): the first list's wins.
    assert [mid for mid, _ in fused] == ["c", "a", "b", "d"]
    assert [score for _, score in fused] == pytest.approx([1 / 7 + 1 / 5, 1 / 5, 1 / 6, 1 / 6])


def test_fusion_breaks_a_score_tie_by_the_better_best_rank() -> None:
    # y: sixth in both lists (1/10 + 1/10) ties x: first in one list (1/5).
    fused = reciprocal_rank_fusion(
        [Ranking(ids=["p1", "p2", "p3", "p4", "p5", "y"]), Ranking(ids=["x", "q2", "q3", "q4", "q5", "y"])], k=4
    )
    order = [mid for mid, _ in fused]
    assert fused[order.index("x")][1] == pytest.approx(fused[order.index("y")][1])
    assert order.index("x") < order.index("y")


def test_fusion_weights_scale_a_retrievers_votes() -> None:
    fused = reciprocal_rank_fusion([Ranking(ids=["kw"], weight=0.6), Ranking(ids=["v1", "v2", "v3", "v4", "v5"])], k=4)
    order = [mid for mid, _ in fused]
    # A keyword-only first place lands between the vector list's fourth and fifth.
    assert order == ["v1", "v2", "v3", "v4", "kw", "v5"]


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_search_orders_by_cosine_and_enforces_visibility_and_filters() -> None:
    index = VectorIndex(3)
    index.put("near", unit(1, 0, 0), author="a", private=False, created_at=10.0, tags=("x",))
    index.put("mid", unit(1, 1, 0), author="b", private=False, created_at=20.0, tags=())
    index.put("secret", unit(1, 0.1, 0), author="b", private=True, created_at=30.0, tags=("x",))
    index.put("far", unit(0, 0, 1), author="a", private=False, created_at=40.0, tags=("x", "y"))
    query = unit(1, 0, 0)

    def ids(**fields: object) -> list[str]:
        where = SearchFilter(agent_id=str(fields.pop("agent_id", "a")), **fields)  # type: ignore[arg-type]
        return [mid for mid, _ in index.search(query, 10, where)]

    assert ids() == ["near", "mid", "far"]
    assert ids(agent_id="b") == ["near", "secret", "mid", "far"]
    assert ids(agent_id="b", scope="agent") == ["secret"]
    assert ids(author="a") == ["near", "far"]
    assert ids(tags=("x",)) == ["near", "far"]
    assert ids(tags=("x", "y")) == ["far"]
    assert ids(since=20.0, until=40.0) == ["mid"]
    [(best, similarity)] = index.search(query, 1, SearchFilter(agent_id="a"))
    assert best == "near" and similarity == pytest.approx(1.0)


def test_updates_removals_growth_and_compaction_keep_results_exact() -> None:
    rng = np.random.default_rng(1)
    index = VectorIndex(8)
    vectors = {f"m{i}": unit(*rng.normal(size=8)) for i in range(3000)}
    for mid, vector in vectors.items():
        index.put(mid, vector, author="a", private=False, created_at=0.0, tags=("t",) if mid < "m2" else ())
    for i in range(0, 3000, 2):  # remove half: forces a compaction
        assert index.remove(f"m{i}")
    assert not index.remove("m0")
    index.put("m1", -vectors["m1"], author="a", private=False, created_at=0.0, tags=())
    assert len(index) == 1500
    query = unit(*rng.normal(size=8))
    alive = {mid: v for mid, v in vectors.items() if int(mid[1:]) % 2 == 1}
    alive["m1"] = -vectors["m1"]
    expected = sorted(alive, key=lambda mid: -float(alive[mid] @ query))[:10]
    assert [mid for mid, _ in index.search(query, 10, SearchFilter(agent_id="a"))] == expected
    tagged = [mid for mid, _ in index.search(query, 3000, SearchFilter(agent_id="a", tags=("t",)))]
    assert sorted(tagged) == sorted(mid for mid in alive if mid < "m2" and mid != "m1")


def test_a_vector_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="expected"):
        VectorIndex(4).put("m", unit(1, 0, 0), author="a", private=False, created_at=0.0, tags=())
