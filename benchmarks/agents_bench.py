"""W6: many registered, idle agents: how long registration takes and what each one costs in RSS.

In-process, and over REST (``POST /api/v1/agents`` through ``PenguinClient`` against a ``penguin
serve`` process, whose resident set is read from ``/proc``; the server's heap cannot be collected
from outside, so its per-agent figure includes garbage not yet collected).

Agents are created one by one through ``PenguinCore.create_agent`` (each in its own committed
transaction, as an API caller would), then the heap is collected and the process's resident set
compared with what it was before the first one. The difference divided by the count is the
memory an idle registered agent costs: its spec, its registry entry, and its share of whatever
the database and caches grew by.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

from benchmarks.plan import Measurement, Plan, Stopwatch, Variant, current_rss_kb
from penguin.core import PenguinCore

PERSONA = "You are a support agent for one customer account. Be brief."


async def run_agents(plan: Plan, variant: Variant, data_dir: Path) -> Measurement:
    result = Measurement(workload="W6", variant=variant)
    if variant == "rest":
        return await _over_rest(plan, data_dir, result)
    create_ms: list[float] = []
    clock = Stopwatch()
    async with PenguinCore(data_dir=data_dir, model="scripted:echo") as core:
        # One agent first, so lazily built machinery (statement caches, pool connections) is not
        # billed to the measured agents.
        await core.create_agent("warmup", system_prompt=PERSONA)
        gc.collect()
        before = current_rss_kb()
        clock.start()
        for i in range(plan.size):
            t0 = time.perf_counter()
            await core.create_agent(f"agent-{i:05d}", system_prompt=PERSONA, roles=["support"])
            create_ms.append((time.perf_counter() - t0) * 1000)
        clock.stop(result)
        gc.collect()
        after = current_rss_kb()
        if len(core.list_agents()) != plan.size + 2:  # + default + warmup
            raise RuntimeError(f"expected {plan.size + 2} agents, the registry has {len(core.list_agents())}")
    result.record_turns(create_ms)
    result.extra = {
        "agents": float(plan.size),
        "create_per_s": plan.size / result.wall_s,
        "rss_kb_per_agent": (after - before) / plan.size,
    }
    return result


async def _over_rest(plan: Plan, data_dir: Path, result: Measurement) -> Measurement:
    from benchmarks.rest import Server
    from penguin.api_client import PenguinClient

    create_ms: list[float] = []
    clock = Stopwatch()
    # The server never calls a model here; the fake URL is only its configuration.
    server = Server(data_dir, "http://127.0.0.1:9/v1", with_tool=False)
    try:
        await server.wait_ready()
        async with PenguinClient(server.url) as client:
            await client.create_agent("warmup", system_prompt=PERSONA)
            before = current_rss_kb(server.process.pid)
            clock.start()
            for i in range(plan.size):
                t0 = time.perf_counter()
                await client.create_agent(f"agent-{i:05d}", system_prompt=PERSONA, roles=["support"])
                create_ms.append((time.perf_counter() - t0) * 1000)
            clock.stop(result)
            after = current_rss_kb(server.process.pid)
            listed = len(await client.list_agents())
            if listed != plan.size + 2:  # + default + warmup
                raise RuntimeError(f"expected {plan.size + 2} agents, the server lists {listed}")
        result.peak_rss_kb = server.peak_rss_kb()
    finally:
        server.stop()
    result.record_turns(create_ms)
    result.extra = {
        "agents": float(plan.size),
        "create_per_s": plan.size / result.wall_s,
        "rss_kb_per_agent": (after - before) / plan.size,
    }
    return result
