"""What each workload does (sizes at a given scale), and the measurement a worker hands back.

Floor and Penguin variants of a workload read the same ``Plan`` and the same texts, so the fake
server sees the same calls with the same message counts from both; the runner checks that.
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Variant = Literal["floor", "aiofloor", "inproc", "rest"]
VARIANT_CHOICES: tuple[Variant, ...] = ("floor", "aiofloor", "inproc", "rest")
WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6")
TITLES = {
    "W1": "one agent, sequential turns, history kept",
    "W2": "three agents round-robin on one task (coordinator)",
    "W3": "distinct agents x 2 turns, 50 in flight",
    "W4": "one agent, tool call + final answer per turn",
    "W5": "bus: publish -> subscriber",
    "W6": "registered idle agents",
}
#: Full-size numbers (scale 1.0).
FULL = {"W1": 200, "W2": 150, "W3": 500, "W4": 100, "W5": 100_000, "W6": 10_000}
IN_FLIGHT = 50
W3_TURNS = 2
MODEL = "fake"
SYSTEM = "You are a benchmark agent. Answer briefly and precisely."
W2_AGENTS = ("planner", "implementer", "reviewer")


def user_text(i: int) -> str:
    """The ``i``-th user message (about 80 characters, like a short real instruction)."""
    return f"Turn {i}: summarise what we have so far and propose the single next step to take."


def lookup(n: int) -> str:
    """Look up the value stored under a number."""
    return f"value-{n * 7 % 1000}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The sizes of one workload at one scale."""

    workload: str
    #: Turns (W1, W2, W4), agents (W3, W6) or envelopes (W5).
    size: int
    #: LLM calls of the timed part.
    calls: int
    #: LLM calls of the untimed warm-up (first connection, lazy imports, caches).
    warmup_calls: int

    @property
    def expected_calls(self) -> int:
        return self.calls + self.warmup_calls


def plan_for(workload: str, scale: float) -> Plan:
    size = max(1, math.ceil(FULL[workload] * scale))
    if workload in ("W1", "W2"):
        return Plan(workload=workload, size=size, calls=size, warmup_calls=1)
    if workload == "W3":
        return Plan(workload=workload, size=size, calls=size * W3_TURNS, warmup_calls=1)
    if workload == "W4":
        return Plan(workload=workload, size=size, calls=size * 2, warmup_calls=2)
    return Plan(workload=workload, size=size, calls=0, warmup_calls=0)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def peak_rss_kb() -> int:
    """This process's peak resident set size in KiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def current_rss_kb(pid: int | str = "self") -> int:
    """Resident set size now, in KiB, from ``/proc/<pid>/status``."""
    return _proc_status_kb(pid, "VmRSS:")


def process_peak_rss_kb(pid: int | str) -> int:
    """Another process's peak resident set size in KiB (``VmHWM``)."""
    return _proc_status_kb(pid, "VmHWM:")


def _proc_status_kb(pid: int | str, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


class Stopwatch:
    """Wall and process CPU time of the timed part of a workload."""

    def __init__(self) -> None:
        self._wall = self._cpu = 0.0

    def start(self) -> None:
        self._wall = time.perf_counter()
        self._cpu = time.process_time()

    def stop(self, into: Measurement) -> None:
        into.wall_s = time.perf_counter() - self._wall
        into.cpu_s = time.process_time() - self._cpu


@dataclass(slots=True, kw_only=True)
class Measurement:
    """What one worker measured for one (workload, variant)."""

    workload: str
    variant: Variant
    #: Wall time of the timed part, seconds.
    wall_s: float = 0.0
    #: CPU time of the process (all its threads) during the timed part, seconds. Less disturbed
    #: than wall time by other load on the machine.
    cpu_s: float = 0.0
    #: LLM calls the timed part made plus the warm-up calls (checked against the server).
    llm_calls: int = 0
    #: Per-turn latency, milliseconds.
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    #: Peak RSS of the process doing the work (the server, for REST), KiB.
    peak_rss_kb: int = 0
    #: Workload-specific numbers (W5: envelopes/s; W6: RSS per agent), by name.
    extra: dict[str, float] = field(default_factory=dict)
    #: Set when the variant could not run (a component not built yet); the row says why.
    skipped: str | None = None

    def record_turns(self, turn_ms: list[float]) -> None:
        self.p50_ms = percentile(turn_ms, 50)
        self.p99_ms = percentile(turn_ms, 99)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(**data)
