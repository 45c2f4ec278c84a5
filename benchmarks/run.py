"""Runs every benchmark workload against the wire floor and writes ``docs/benchmarks.md``.

    python -m benchmarks.run                # full size, best of 3, about 3-5 minutes on 2 cores
    python -m benchmarks.run --scale 0.05   # the 1/20 smoke run the test suite uses

The fake OpenAI-compatible server runs in its own process for the whole run. Each measurement
runs in a fresh worker process (see ``benchmarks.worker``); before it the server's counters are
reset and after it they are checked: the server must have seen exactly the calls the workload
makes, with exactly as many messages as the floor sent, or the run stops with an error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as ``python benchmarks/run.py``: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402

from benchmarks.fake_llm import Counters, FakeLLM  # noqa: E402
from benchmarks.plan import VARIANT_CHOICES, WORKLOADS, Measurement, Plan, Variant, plan_for  # noqa: E402
from benchmarks.report import Row, python_speed_ms, render  # noqa: E402
from benchmarks.worker import RESULT_PREFIX  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "docs" / "benchmarks.md"
VARIANTS: dict[str, tuple[Variant, ...]] = {
    "W1": ("floor", "aiofloor", "inproc", "rest"),
    "W2": ("floor", "aiofloor", "inproc", "rest"),
    "W3": ("floor", "aiofloor", "inproc", "rest"),
    "W4": ("floor", "aiofloor", "inproc", "rest"),
    "W5": ("floor", "inproc"),
    "W6": ("inproc", "rest"),
}
WORKER_TIMEOUT_S = 300
#: Runs per variant at full size (best kept): short workloads are repeated more, because a shared
#: machine disturbs a 0.1 s measurement more than a 2 s one.
FULL_REPEATS = {"W1": 5, "W2": 5, "W3": 3, "W4": 5, "W5": 5, "W6": 2}

METHOD = """
## Method

- **Fake model server** (`benchmarks/fake_llm.py`): a separate process (raw asyncio protocol on
  uvloop, HTTP/1.1 keep-alive) on 127.0.0.1, so it never shares a GIL with the code measured.
  Replies are deterministic (`ack <n>`, or a call of the first offered tool when the last message
  is the user's). It counts calls, messages and bytes; after every measurement the runner checks
  that it saw exactly the expected number of calls, and exactly as many messages as the floor
  sent, and stops with an error otherwise.
- **Wire floor** (`benchmarks/floor.py`): the same LLM calls as plain POSTs on one keep-alive
  `httpx.AsyncClient` with orjson bodies and a hand-kept message list; no persistence. This is
  the floor the issue's targets are measured against ("ms added", "ratio").
- **aiohttp wire floor**: the same calls on one bare `aiohttp.ClientSession`. Penguin's model
  clients and `PenguinClient` use aiohttp (a third of httpx's CPU per call here, a tenth with 50
  calls in flight), so part of Penguin's lead over the httpx floor is its transport; the notes
  give each Penguin row's distance to this floor, which is Penguin's own cost.
- **Penguin in-process** (`benchmarks/inproc.py`): `PenguinCore(data_dir=tmp, model="openai:fake",
  openai_base_url=...)` with persistence on (SQLite in WAL mode, every turn committed in one
  transaction, every turn's events on the bus and in the database). Plain chat agents are offered
  no tools (the floor sends none); W4's agent is offered only the trivial `lookup` tool,
  registered as non-blocking so it runs on the loop like the floor's. W2 goes through
  `core.coordinator.round_robin` (bus message, inbox, receipt, reply).
- **Penguin over REST** (`benchmarks/rest.py`): `PenguinClient` against a `penguin serve`
  subprocess configured through its environment (W4: the same app from
  `benchmarks/tool_server.py`, which registers `lookup`; W2: the coordinator's REST route).
  Peak RSS and CPU are the server's.
- **W5**: one publisher builds envelopes addressed to an agent and yields every 100; one filtered
  subscriber receives them; the floor is the same on a bare `asyncio.Queue`. The bus is an
  in-process component (its target is in-process), so W5 has no REST variant. **W6**: agents
  created one by one with `create_agent`; RSS growth after a full collection, per agent; over
  REST, `POST /agents` through `PenguinClient` and the server's RSS growth (not collected).
- Each measurement runs in a fresh process after one untimed warm-up turn (first connection,
  lazy imports); the table shows the fastest of N runs per variant because the machine may be
  shared. `ms added / LLM call` = (wall − floor wall) / LLM calls of the timed part;
  `CPU ms / LLM call` is the process's CPU (all threads) per call, which other load on the
  machine disturbs less than wall time.
- W3 runs 50 agents' turns at once: httpx's connection pool does work per request in proportion
  to the requests waiting in it (encode/httpx#3215), which makes the httpx floor CPU-bound there.
  Over REST the client shares the machine's two cores with the server, so its CPU per call is
  in the notes.
"""


class BenchmarkFailed(RuntimeError):
    """A worker crashed, or the fake server saw something other than what the workload makes."""


def _log(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def run_worker(workload: str, variant: Variant, scale: float, base_url: str, loop: str) -> Measurement:
    command = [
        sys.executable, "-m", "benchmarks.worker", workload, variant,
        "--scale", repr(scale), "--base-url", base_url, "--loop", loop,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, cwd=ROOT, env=env, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkFailed(f"{workload}/{variant} took longer than {WORKER_TIMEOUT_S} s") from exc
    lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise BenchmarkFailed(f"{workload}/{variant} failed (exit {proc.returncode}):\n{proc.stderr[-6000:]}")
    return Measurement.from_dict(orjson.loads(lines[-1][len(RESULT_PREFIX) :]))


def check_counts(plan: Plan, measured: Measurement, seen: Counters, floor_messages: int | None) -> None:
    """Fail loudly unless the server saw exactly the calls (and messages) the workload makes."""
    label = f"{plan.workload}/{measured.variant}"
    expected = 0 if measured.skipped or plan.calls == 0 else plan.expected_calls
    if seen.errors:
        raise BenchmarkFailed(f"{label}: the fake server answered {seen.errors} request(s) with an error")
    if seen.completions != expected:
        raise BenchmarkFailed(f"{label}: expected {expected} LLM calls, the fake server saw {seen.completions}")
    if measured.llm_calls != expected:
        raise BenchmarkFailed(f"{label}: the worker reports {measured.llm_calls} LLM calls, expected {expected}")
    if floor_messages is not None and expected and seen.messages_total != floor_messages:
        raise BenchmarkFailed(
            f"{label}: sent {seen.messages_total} messages in total, the floor sent {floor_messages}; "
            "the workloads no longer make the same calls"
        )


def run_all(
    workloads: list[str], *, scale: float, repeat: int | None, loop: str, variants: frozenset[str] | None = None
) -> list[Row]:
    rows: list[Row] = []
    with FakeLLM() as server:
        for workload in workloads:
            plan = plan_for(workload, scale)
            repeats = repeat or (FULL_REPEATS[workload] if scale >= 0.5 else 1)
            best: dict[Variant, Measurement] = {}
            seen_calls: dict[Variant, int] = {}
            floor_messages: int | None = None
            chosen = [v for v in VARIANTS[workload] if variants is None or v in variants]
            for attempt in range(repeats):
                for variant in chosen:
                    server.reset()
                    measured = run_worker(workload, variant, scale, server.base_url, loop)
                    seen = server.stats()
                    check_counts(plan, measured, seen, floor_messages if variant != "floor" else None)
                    if variant == "floor" and plan.calls:
                        floor_messages = seen.messages_total
                    _log(
                        f"{workload} {variant:6s} run {attempt + 1}/{repeats}: "
                        + (f"skipped ({measured.skipped})" if measured.skipped else f"{measured.wall_s:.3f} s")
                    )
                    if variant not in best or (not measured.skipped and measured.wall_s < best[variant].wall_s):
                        best[variant] = measured
                        seen_calls[variant] = seen.completions
                if all(m.skipped for m in best.values()):
                    break
            floor, aiofloor = best.get("floor"), best.get("aiofloor")
            for variant in chosen:
                rows.append(
                    Row(
                        plan=plan,
                        measured=best[variant],
                        floor=floor,
                        aiofloor=aiofloor,
                        server_calls=seen_calls[variant],
                    )
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure Penguin's orchestration overhead against the wire floor.")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full workload sizes (0.05 = smoke)")
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per variant, best kept (default 2-5 by workload; 1 below 0.5)"
    )
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads, e.g. W1,W4")
    parser.add_argument(
        "--variants", default=None, help=f"comma-separated variants to run ({','.join(VARIANT_CHOICES)}); default: all"
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file to write")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw measurements here")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    workloads = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    variants = None if args.variants is None else frozenset(v.strip() for v in args.variants.split(",") if v.strip())
    if variants is not None and not variants <= set(VARIANT_CHOICES):
        parser.error(f"unknown variant(s) {sorted(variants - set(VARIANT_CHOICES))}")
    speed_ms = python_speed_ms()
    started = time.perf_counter()
    rows = run_all(workloads, scale=args.scale, repeat=args.repeat, loop=args.loop, variants=variants)
    elapsed = time.perf_counter() - started
    repeats = str(args.repeat) if args.repeat else ("2-5 (by workload)" if args.scale >= 0.5 else "1")
    markdown = render(
        rows, scale=args.scale, repeats=repeats, loop=args.loop, elapsed_s=elapsed, method=METHOD, speed_ms=speed_ms
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown, encoding="utf-8")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps([r.to_dict() for r in rows], option=orjson.OPT_INDENT_2))
    _log(f"wrote {args.out} in {elapsed:.0f} s")
    sys.stdout.write(markdown + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
