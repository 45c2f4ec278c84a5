"""W5: the in-process bus: envelopes published → one filtered subscriber, throughput and latency.

The publisher builds each envelope (addressed to one agent), publishes it, and yields to the loop
every ``BURST`` envelopes, as a busy runtime would; the subscriber iterates its subscription and
records publish → receive latency. Throughput is envelopes over the time from the first publish
to the last receipt. The floor is the same publisher and consumer on a bare ``asyncio.Queue``:
no sequence numbers, filters, ring, or persistence. Penguin's bus also writes every envelope to
the database behind the publisher (group commit); the time until that has caught up is reported
separately.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from benchmarks.plan import Measurement, Plan, Stopwatch, Variant, percentile

BURST = 100
RECIPIENT = "bench-agent"


class LostEnvelopes(RuntimeError):
    """The subscriber did not receive every envelope, in order."""


async def run_bus(plan: Plan, variant: Variant, data_dir: Path) -> Measurement:
    result = Measurement(workload="W5", variant=variant)
    if variant == "floor":
        latencies = await _floor(plan.size, result)
    elif variant == "inproc":
        from penguin.core import PenguinCore

        async with PenguinCore(data_dir=data_dir, model="scripted:echo") as core:
            bus: Any = getattr(core, "bus", None)
            if bus is None:
                result.skipped = "core.bus is not wired into PenguinCore yet"
                return result
            latencies = await _bus(bus, plan.size, result)
            flush_started = time.perf_counter()
            await bus.flush()
            result.extra["persisted_per_s"] = plan.size / (result.wall_s + time.perf_counter() - flush_started)
    else:
        result.skipped = "the bus is measured in-process"
        return result
    result.p50_ms = percentile(latencies, 50)
    result.p99_ms = percentile(latencies, 99)
    result.extra["envelopes"] = float(plan.size)
    result.extra["envelopes_per_s"] = plan.size / result.wall_s
    return result


async def _floor(count: int, result: Measurement) -> list[float]:
    from penguin.bus.envelope import Envelope, IdFactory

    queue: asyncio.Queue[tuple[Envelope, float]] = asyncio.Queue()
    new_id = IdFactory()
    latencies: list[float] = []
    clock = Stopwatch()

    async def consume() -> None:
        for _ in range(count):
            _env, sent = await queue.get()
            latencies.append((time.perf_counter() - sent) * 1000)

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    clock.start()
    for i in range(count):
        env = Envelope(id=new_id(), sender="human", recipient=RECIPIENT, content="ping")
        queue.put_nowait((env, time.perf_counter()))
        if i % BURST == BURST - 1:
            await asyncio.sleep(0)
    await consumer
    clock.stop(result)
    return latencies


async def _bus(bus: Any, count: int, result: Measurement) -> list[float]:
    from penguin.bus.envelope import Envelope, IdFactory
    from penguin.bus.filters import EnvelopeFilter

    new_id = IdFactory()
    sent: list[float] = [0.0] * count
    latencies: list[float] = []
    clock = Stopwatch()
    subscription = bus.subscribe(EnvelopeFilter(recipient=RECIPIENT), max_queue=count + 1)
    first_seq = bus.last_seq + 1

    async def consume() -> None:
        expected = first_seq
        async for env in subscription:
            if env.seq != expected:
                raise LostEnvelopes(f"expected seq {expected}, received {env.seq}")
            latencies.append((time.perf_counter() - sent[env.seq - first_seq]) * 1000)
            expected += 1
            if expected == first_seq + count:
                return

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0)
    clock.start()
    for i in range(count):
        env = Envelope(id=new_id(), sender="human", recipient=RECIPIENT, content="ping")
        sent[i] = time.perf_counter()
        await bus.publish(env)
        if i % BURST == BURST - 1:
            await asyncio.sleep(0)
    await consumer
    clock.stop(result)
    subscription.close()
    if len(latencies) != count:
        raise LostEnvelopes(f"published {count} envelopes, the subscriber received {len(latencies)}")
    return latencies
