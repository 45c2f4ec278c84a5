"""The counters the telemetry collector keeps: latency samples and per-agent statistics.

Plain mutable records, owned by one ``TelemetryCollector`` and only touched on its event loop,
so they need no locks. Latency keeps both a bounded reservoir of recent samples (for exact
p50/p95 over the last ``RESERVOIR_SIZE`` turns, what a dashboard shows) and fixed cumulative
buckets (what Prometheus aggregates across processes); memory stays bounded either way.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

#: Recent latency samples kept per agent for percentiles.
RESERVOIR_SIZE = 1024
#: Upper bounds (milliseconds) of the latency histogram buckets; +Inf is implied.
BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)


@dataclass(slots=True)
class Latency:
    """Turn latencies in milliseconds: count and sum of all, percentiles of the recent ones."""

    count: int = 0
    #: Sum of every sample (ms), for the mean and Prometheus ``_sum``.
    total_ms: float = 0.0
    max_ms: float = 0.0
    #: The most recent ``RESERVOIR_SIZE`` samples.
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=RESERVOIR_SIZE))
    #: Samples per bucket of ``BUCKETS_MS`` (non-cumulative; the last slot is +Inf).
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))

    def add(self, ms: float) -> None:
        ms = max(0.0, float(ms))
        self.count += 1
        self.total_ms += ms
        self.max_ms = max(self.max_ms, ms)
        self.recent.append(ms)
        for index, bound in enumerate(BUCKETS_MS):
            if ms <= bound:
                self.buckets[index] += 1
                return
        self.buckets[-1] += 1

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile (``q`` in 0..1) of the recent samples; 0.0 when there are none."""
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        rank = max(1, math.ceil(q * len(ordered)))
        return ordered[rank - 1]

    def cumulative_buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs for a Prometheus histogram, ending with ``+Inf``."""
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip((*BUCKETS_MS, math.inf), self.buckets, strict=True):
            running += n
            out.append(("+Inf" if bound == math.inf else str(bound / 1000), float(running)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": round(self.total_ms / self.count, 3) if self.count else 0.0,
            "p50": round(self.percentile(0.50), 3),
            "p95": round(self.percentile(0.95), 3),
            "max": round(self.max_ms, 3),
        }


@dataclass(slots=True)
class AgentStats:
    """What one agent did since the collector started."""

    #: Completed turns (``turn.completed`` events).
    turns: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    #: Tool calls made inside completed turns.
    turn_tool_calls: int = 0
    #: Whole-turn latency (``timings.total``, ms).
    latency: Latency = field(default_factory=Latency)
    #: Time spent in model calls per turn (``timings.model``, ms).
    model_latency: Latency = field(default_factory=Latency)
    #: Failures by kind: ``turn`` (turn.failed), ``receipt`` (receipt.failed), ``task`` (task.failed).
    errors: Counter[str] = field(default_factory=Counter)
    #: Envelopes the agent sent / that were addressed to it.
    sent: int = 0
    received: int = 0
    #: Envelopes involving the agent (sent, addressed, or on ``agent:<id>``) by message type.
    by_type: Counter[str] = field(default_factory=Counter)
    #: The same envelopes by channel (``-`` for direct messages without a channel).
    by_channel: Counter[str] = field(default_factory=Counter)
    #: Current task counts by status (tasks seen since the collector started).
    tasks: Counter[str] = field(default_factory=Counter)
    #: Receipt transitions of messages addressed to the agent, by status.
    receipts: Counter[str] = field(default_factory=Counter)
    #: Model name of the last completed turn.
    last_model: str = ""
    #: Epoch seconds of the last envelope involving the agent.
    last_seen: float = 0.0
