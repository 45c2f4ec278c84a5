"""Retrieval quality of the memory store: recall@5 for keyword, vector and hybrid search.

Loads the labeled set in ``benchmarks/data/memory_retrieval.json`` (memories written by a team of
agents, and questions with the ids of the memories that answer them) into a real ``MemoryStore``
on a temporary SQLite database, then asks every question in each mode through ``search``.

recall@5 of a query is the share of its relevant memories found in the top 5; the table reports
the mean over queries, overall and per query kind (``keyword``: rare identifiers; ``paraphrase``:
no shared content words; ``mixed``), plus MRR (mean reciprocal rank of the first relevant hit).

    python -m benchmarks.memory_eval --check          # minilm (needs the [minilm] extra)
    python -m benchmarks.memory_eval --embedder hash  # the hash test double, no model

The fusion parameters (``penguin.memory.fusion``) were tuned for MiniLM on this set; with the
weak hash embedder hybrid search scores below keyword search alone, which is expected.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from penguin.config import Settings
from penguin.memory import MemoryStore, NewMemory, make_embedder
from penguin.memory.records import SearchMode
from penguin.storage.database import Database

DATA = Path(__file__).parent / "data" / "memory_retrieval.json"
K = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeScore:
    mode: str
    recall: float
    mrr: float
    by_kind: dict[str, float]
    misses: list[str]


def load(path: Path = DATA) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def evaluate(
    embedder_name: str, *, data: dict[str, Any] | None = None, **store_options: Any
) -> tuple[list[ModeScore], dict[str, float]]:
    """Scores per mode, and timings (ms): bulk add, mean search per mode."""
    data = data or load()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/eval.db")
        await db.create_schema()
        embedder = make_embedder(embedder_name, Settings(data_dir=Path(tmp)))
        store = MemoryStore(db, tenant_id="default", embedder=embedder, **store_options)
        await store.start()
        try:
            t0 = time.perf_counter()
            ids = await store.add_many(
                [NewMemory(text=d["text"], author=d["author"], metadata={"doc": d["id"]}) for d in data["documents"]]
            )
            timings = {"add_ms": (time.perf_counter() - t0) * 1000}
            doc_of = dict(zip(ids, (d["id"] for d in data["documents"]), strict=True))
            modes: list[SearchMode] = ["keyword", "vector", "hybrid"] if embedder is not None else ["keyword"]
            scores = []
            for mode in modes:
                t1 = time.perf_counter()
                scores.append(await _score(store, data["queries"], doc_of, mode))
                timings[f"{mode}_search_ms"] = (time.perf_counter() - t1) * 1000 / len(data["queries"])
            return scores, timings
        finally:
            await store.aclose()
            await db.aclose()


async def _score(
    store: MemoryStore, queries: list[dict[str, Any]], doc_of: dict[str, str], mode: SearchMode
) -> ModeScore:
    recalls: list[float] = []
    ranks: list[float] = []
    by_kind: dict[str, list[float]] = defaultdict(list)
    misses: list[str] = []
    for q in queries:
        hits = await store.search(q["text"], K, agent_id="eval", mode=mode)
        got = [doc_of[h.memory.id] for h in hits]
        relevant = set(q["relevant"])
        recall = len(relevant.intersection(got)) / len(relevant)
        recalls.append(recall)
        by_kind[q["kind"]].append(recall)
        first = next((i for i, d in enumerate(got, start=1) if d in relevant), None)
        ranks.append(1 / first if first else 0.0)
        if recall < 1:
            misses.append(q["id"])
    return ModeScore(
        mode=mode,
        recall=sum(recalls) / len(recalls),
        mrr=sum(ranks) / len(ranks),
        by_kind={kind: sum(v) / len(v) for kind, v in sorted(by_kind.items())},
        misses=misses,
    )


def report(embedder: str, scores: list[ModeScore], timings: dict[str, float], data: dict[str, Any]) -> str:
    kinds = sorted({q["kind"] for q in data["queries"]})
    lines = [
        f"memory retrieval: {len(data['documents'])} memories, {len(data['queries'])} queries, embedder={embedder}",
        "",
        f"| mode | recall@{K} | MRR | " + " | ".join(kinds) + " | missed queries |",
        "|---|---|---|" + "---|" * len(kinds) + "---|",
    ]
    for s in scores:
        per_kind = " | ".join(f"{s.by_kind.get(k, 0):.3f}" for k in kinds)
        lines.append(f"| {s.mode} | {s.recall:.3f} | {s.mrr:.3f} | {per_kind} | {' '.join(s.misses) or '-'} |")
    lines.append("")
    lines.append("timings: " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", default="minilm", help="minilm (default), hash, or openai:<model>")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when hybrid recall is below the better single retriever"
    )
    args = parser.parse_args(argv)
    data = load()
    scores, timings = asyncio.run(evaluate(args.embedder, data=data))
    if args.json:
        print(json.dumps({"embedder": args.embedder, "scores": [s.__dict__ for s in scores], "timings": timings}))
    else:
        print(report(args.embedder, scores, timings, data))
    by_mode = {s.mode: s.recall for s in scores}
    if "hybrid" in by_mode and by_mode["hybrid"] < max(by_mode["keyword"], by_mode["vector"]):
        print("hybrid recall is below the better single retriever", file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
