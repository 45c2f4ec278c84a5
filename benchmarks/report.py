"""Turns measurements into ``docs/benchmarks.md``: the machine, one table, and the targets.

Every number is derived here from the best-of-N measurements the runner picked, so the table and
the target verdicts can never disagree.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import dataclass

from benchmarks.plan import TITLES, WORKLOADS, Measurement, Plan

VARIANT_NAMES = {
    "floor": "wire floor",
    "aiofloor": "aiohttp wire floor",
    "inproc": "Penguin in-process",
    "rest": "Penguin over REST",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One (workload, variant) line of the table, with everything derived from the floor."""

    plan: Plan
    measured: Measurement
    floor: Measurement | None
    #: The same calls on a bare aiohttp session (Penguin's own model transport), for reference.
    aiofloor: Measurement | None = None
    #: Chat completions the fake server answered during this measurement.
    server_calls: int = 0

    def to_dict(self) -> dict[str, object]:
        expected = self.plan.expected_calls
        return {**self.measured.to_dict(), "server_calls": self.server_calls, "expected_calls": expected}

    @property
    def llm(self) -> bool:
        return self.plan.calls > 0

    @property
    def added_ms(self) -> float | None:
        """Milliseconds Penguin adds per LLM call over the floor (wall time)."""
        if not self.llm or self.floor is None or self.measured.variant == "floor":
            return None
        return (self.measured.wall_s - self.floor.wall_s) * 1000 / self.plan.calls

    @property
    def ratio(self) -> float | None:
        if not self.llm or self.floor is None or self.floor.wall_s <= 0 or self.measured.variant == "floor":
            return None
        return self.measured.wall_s / self.floor.wall_s

    @property
    def over_aiofloor_ms(self) -> float | None:
        """Milliseconds per LLM call over the aiohttp floor: Penguin's own cost beyond its transport."""
        if not self.llm or self.aiofloor is None or self.measured.variant not in ("inproc", "rest"):
            return None
        return (self.measured.wall_s - self.aiofloor.wall_s) * 1000 / self.plan.calls

    @property
    def cpu_ms_per_call(self) -> float | None:
        return self.measured.cpu_s * 1000 / self.plan.calls if self.llm else None


def python_speed_ms() -> float:
    """Best of 3 of a fixed pure-Python loop, in ms: compares machines (and load) between runs."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(2_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return best * 1000


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count() or 0),
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "os": f"{platform.system()} {platform.release()}",
    }


def _num(value: float | None, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:,.{digits}f}{suffix}"


def _notes(row: Row) -> str:
    m = row.measured
    if m.skipped:
        return f"not run: {m.skipped}"
    extra = m.extra
    if row.plan.workload == "W5":
        parts = [f"{extra.get('envelopes_per_s', 0):,.0f} envelopes/s"]
        if "publish_per_s" in extra:
            parts.append(f"publish {extra['publish_per_s']:,.0f}/s")
        return ", ".join(parts) + "; p50/p99 = publish→receive latency"
    if row.plan.workload == "W6":
        return (
            f"{extra.get('rss_kb_per_agent', 0):.2f} KB RSS per idle agent, "
            f"{extra.get('create_per_s', 0):,.0f} creates/s; p50/p99 = one create"
        )
    parts = []
    if (over := row.over_aiofloor_ms) is not None:
        parts.append(f"{over:+.3f} ms / LLM call over the aiohttp floor")
    if "client_cpu_s" in extra and row.plan.calls:
        parts.append(f"client CPU {extra['client_cpu_s'] * 1000 / row.plan.calls:.3f} ms / LLM call")
    return "; ".join(parts)


def _row_line(row: Row) -> str:
    m = row.measured
    name = f"{row.plan.workload} | {VARIANT_NAMES[m.variant]}"
    if m.skipped:
        return f"| {name} | — | — | — | — | — | — | — | — | {_notes(row)} |"
    calls = str(m.llm_calls) if row.llm else "—"
    return (
        f"| {name} | {calls} | {_num(m.wall_s, 3)} | {_num(row.added_ms, 3)} | {_num(row.ratio, 2, 'x')} "
        f"| {_num(m.p50_ms, 3)} | {_num(m.p99_ms, 3)} | {m.peak_rss_kb / 1024:,.1f} "
        f"| {_num(row.cpu_ms_per_call, 3)} | {_notes(row)} |"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    target: str
    measured: str
    met: bool | None  # None: not measured


def verdicts(rows: list[Row]) -> list[Verdict]:
    def find(workload: str, variant: str) -> Row | None:
        for row in rows:
            if row.plan.workload == workload and row.measured.variant == variant and not row.measured.skipped:
                return row
        return None

    out: list[Verdict] = []
    for workload in ("W1", "W4"):
        for variant, limit in (("inproc", 0.5), ("rest", 2.0)):
            row = find(workload, variant)
            added = row.added_ms if row else None
            out.append(
                Verdict(
                    target=f"{workload} {VARIANT_NAMES[variant]}: ≤ {limit} ms added per LLM call",
                    measured=_num(added, 3, " ms"),
                    met=None if added is None else added <= limit,
                )
            )
    for variant in ("inproc", "rest"):
        row = find("W3", variant)
        ratio = row.ratio if row else None
        out.append(
            Verdict(
                target=f"W3 {VARIANT_NAMES[variant]}: ≤ 1.3x the floor",
                measured=_num(ratio, 2, "x"),
                met=None if ratio is None else ratio <= 1.3,
            )
        )
    for variant in ("inproc", "rest"):
        row = find("W6", variant)
        per_agent = row.measured.extra.get("rss_kb_per_agent") if row else None
        out.append(
            Verdict(
                target=f"W6 {VARIANT_NAMES[variant]}: ≤ 20 KB RSS per idle registered agent",
                measured=_num(per_agent, 2, " KB"),
                met=None if per_agent is None else per_agent <= 20,
            )
        )
    row = find("W5", "inproc")
    rate = row.measured.extra.get("envelopes_per_s") if row else None
    out.append(
        Verdict(
            target="W5: ≥ 100,000 envelopes/s on the in-process bus",
            measured=_num(rate, 0, "/s"),
            met=None if rate is None else rate >= 100_000,
        )
    )
    return out


def render(
    rows: list[Row], *, scale: float, repeats: str, loop: str, elapsed_s: float, method: str, speed_ms: float
) -> str:
    info = machine()
    lines = [
        "# Benchmarks: orchestration overhead against the wire floor",
        "",
        "Generated by `python -m benchmarks.run"
        + ("" if scale == 1 else f" --scale {scale:g}")
        + "`; do not edit by hand (edit `benchmarks/report.py`).",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['os']}",
        f"- Python: {info['python']}, event loop: {loop}; a fixed loop of 2M additions took {speed_ms:.0f} ms "
        "(machines differ: compare runs by it)",
        f"- Scale: {scale:g} (1 = full size), best of {repeats} run(s) per variant, whole run {elapsed_s:.0f} s",
        "",
        "## Results",
        "",
        "| workload | variant | LLM calls (server-checked) | wall s | ms added / LLM call | ratio to floor "
        "| p50 ms | p99 ms | peak RSS MiB | CPU ms / LLM call | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for workload in WORKLOADS:
        workload_rows = [r for r in rows if r.plan.workload == workload]
        if not workload_rows:
            continue
        for row in workload_rows:
            lines.append(_row_line(row))
    lines += ["", "Workloads:", ""]
    for workload in WORKLOADS:
        lines.append(f"- **{workload}**: {TITLES[workload]}.")
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---:|---|"]
    for v in verdicts(rows):
        status = "not measured" if v.met is None else ("yes" if v.met else "**no**")
        lines.append(f"| {v.target} | {v.measured} | {status} |")
    lines += ["", method.strip(), ""]
    return "\n".join(lines)
