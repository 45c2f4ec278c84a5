"""Runs one (workload, variant) in a fresh process and prints its ``Measurement`` as JSON.

A fresh process per measurement keeps peak RSS honest (``ru_maxrss`` only grows) and keeps one
workload's caches, garbage and warm connections from flattering the next.

    python -m benchmarks.worker W1 inproc --scale 1 --base-url http://127.0.0.1:PORT/v1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
from pathlib import Path

import orjson

from benchmarks.plan import VARIANT_CHOICES, WORKLOADS, Measurement, Variant, peak_rss_kb, plan_for

RESULT_PREFIX = "RESULT "


async def measure(workload: str, variant: Variant, scale: float, base_url: str, data_dir: Path) -> Measurement:
    plan = plan_for(workload, scale)
    if workload == "W5":
        from benchmarks.bus_bench import run_bus

        return await run_bus(plan, variant, data_dir)
    if workload == "W6":
        from benchmarks.agents_bench import run_agents

        return await run_agents(plan, variant, data_dir)
    if variant in ("floor", "aiofloor"):
        from benchmarks.floor import run_floor

        return await run_floor(plan, base_url, variant)
    if variant == "inproc":
        from benchmarks.inproc import run_inproc

        return await run_inproc(plan, base_url, data_dir)
    from benchmarks.rest import run_rest

    return await run_rest(plan, base_url, data_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one benchmark measurement.")
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("variant", choices=VARIANT_CHOICES)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--base-url", default="")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    # Collections during a timed loop are part of the cost being measured, but a full collection
    # of the import-time heap is not: start every measurement from a frozen, clean heap.
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="penguin-bench-") as tmp:
        coro = measure(args.workload, args.variant, args.scale, args.base_url, Path(tmp))
        if args.loop == "uvloop":
            import uvloop

            result = uvloop.run(coro)
        else:
            result = asyncio.run(coro)
    if result.peak_rss_kb == 0:
        result.peak_rss_kb = peak_rss_kb()
    sys.stdout.write(RESULT_PREFIX + orjson.dumps(result.to_dict()).decode() + "\n")


if __name__ == "__main__":
    main()
