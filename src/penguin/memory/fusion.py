"""Reciprocal rank fusion: merge ranked lists by rank, not by their incomparable scores.

bm25 and cosine similarity live on different scales, and bm25's even changes with the corpus, so
the lists are combined by position: a memory scores ``weight / (k + rank)`` in each list that has
it (Cormack et al., SIGIR 2009). ``k`` damps the head so that one list's first place does not
drown a memory that both lists rank well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: The paper's constant is 60, tuned for fusing many deep runs. Memory search fuses two lists and
#: keeps the top few, where a flatter curve lets one retriever's weak tail outvote the other's clear
#: head. On ``benchmarks/memory_eval.py`` (MiniLM) recall@5 is 0.969 for every k from 2 to 6 with a
#: keyword weight from 0.4 to 0.8, against 0.828 at k=60 with equal weights; we take the middle.
DEFAULT_K = 4
#: Keyword votes count 0.6 of vector votes: with k=4 a keyword-only first place (0.12) still ranks
#: above the vector list's fifth (0.11), so an exact identifier match always reaches the top five,
#: while keyword matches on incidental words rank below the vector list's head.
DEFAULT_KEYWORD_WEIGHT = 0.6


@dataclass(frozen=True, slots=True, kw_only=True)
class Ranking:
    """One retriever's answer: memory ids best first, and how much its votes count."""

    ids: Sequence[str]
    weight: float = 1.0


def reciprocal_rank_fusion(rankings: Sequence[Ranking], *, k: int = DEFAULT_K) -> list[tuple[str, float]]:
    """``(id, fused score)`` best first.

    Ties (a memory first in one list against another first in the other) go to the memory with the
    better best rank, then to the ranking listed first, so the order is deterministic.
    """
    scores: dict[str, float] = {}
    best: dict[str, tuple[int, int]] = {}
    for position, ranking in enumerate(rankings):
        for rank, memory_id in enumerate(ranking.ids, start=1):
            scores[memory_id] = scores.get(memory_id, 0.0) + ranking.weight / (k + rank)
            key = (rank, position)
            if memory_id not in best or key < best[memory_id]:
                best[memory_id] = key
    return sorted(scores.items(), key=lambda item: (-item[1], best[item[0]]))
