"""``TelemetrySummary``: one snapshot of the collector's statistics, as plain data.

The shape is what ``GET /api/v1/telemetry`` returns and ``/api/v1/ws/telemetry`` pushes, so a
dashboard reads the same fields in-process (``core.telemetry_summary()``) and over the wire.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from penguin.telemetry.stats import AgentStats

_TOOL_KEYS = ("allowed", "denied", "errors", "timeouts")


def count_map(counter: Counter[str]) -> dict[str, int]:
    """A counter as a sorted dict without zero or negative entries."""
    return {k: n for k, n in sorted(counter.items()) if n > 0}


def agent_entry(stats: AgentStats, tools: Mapping[str, Any] | None) -> dict[str, Any]:
    """One agent's block of the summary (``tools`` is its entry of ``core.tool_stats()``)."""
    tools = tools or {}
    return {
        "turns": stats.turns,
        "tokens": {
            "input_tokens": stats.input_tokens,
            "output_tokens": stats.output_tokens,
            "total_tokens": stats.input_tokens + stats.output_tokens,
        },
        "latency_ms": stats.latency.to_dict(),
        "model_latency_ms": stats.model_latency.to_dict(),
        "errors": count_map(stats.errors),
        "messages": {
            "sent": stats.sent,
            "received": stats.received,
            "by_type": count_map(stats.by_type),
            "by_channel": count_map(stats.by_channel),
        },
        "tasks": count_map(stats.tasks),
        "receipts": count_map(stats.receipts),
        "tool_calls": {
            "in_turns": stats.turn_tool_calls,
            **{k: int(tools.get(k, 0)) for k in _TOOL_KEYS},
            "denied_by_reason": dict(tools.get("denied_by_reason", {})),
        },
        "model": stats.last_model or None,
        "last_seen": stats.last_seen or None,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetrySummary:
    """Statistics since the collector started; counts only what involves ``agent_id`` when set."""

    #: The agent the summary is restricted to, or None for the whole instance.
    agent_id: str | None = None
    #: Epoch seconds when the collector started (0 before the core starts).
    started_at: float = 0.0
    uptime_seconds: float = 0.0
    #: Envelopes counted, and envelopes the bounded subscription had to drop (uncounted).
    observed: int = 0
    dropped: int = 0
    #: ``{"total", "by_type", "by_channel", "by_agent"}``; channel ``-`` = a direct message.
    messages: dict[str, Any] = field(default_factory=dict)
    #: Per agent: turns, tokens, latency_ms/model_latency_ms (count, mean, p50, p95, max), errors,
    #: messages, tasks, receipts, tool_calls, model, last_seen.
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Agent lifecycle events by kind (``created``, ``updated``, ``removed``).
    agent_events: dict[str, int] = field(default_factory=dict)
    turns: int = 0
    #: ``{"input_tokens", "output_tokens", "total_tokens"}`` summed over the agents listed.
    tokens: dict[str, int] = field(default_factory=dict)
    #: Failures by kind (``turn``, ``receipt``, ``task``) summed over the agents listed.
    errors: dict[str, int] = field(default_factory=dict)
    #: ``{"by_status": {status: n}, "total": n}``: current status of tasks seen.
    tasks: dict[str, Any] = field(default_factory=dict)
    #: Receipt transitions by status (queued, delivered, processed, failed, published).
    receipts: dict[str, int] = field(default_factory=dict)
    #: ``{"count", "rooms": {name: {"members", "posts", "replies"}}}``.
    rooms: dict[str, Any] = field(default_factory=dict)
    #: Tool-call totals from the tool policy (allowed, denied, errors, timeouts, denied_by_reason).
    tools: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "started_at": self.started_at,
            "uptime_seconds": self.uptime_seconds,
            "observed": self.observed,
            "dropped": self.dropped,
            "messages": self.messages,
            "agents": self.agents,
            "agent_events": self.agent_events,
            "turns": self.turns,
            "tokens": self.tokens,
            "errors": self.errors,
            "tasks": self.tasks,
            "receipts": self.receipts,
            "rooms": self.rooms,
            "tools": self.tools,
        }
