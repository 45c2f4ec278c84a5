"""Prometheus text exposition of the telemetry collector (``GET /metrics``).

A custom ``prometheus_client`` collector reads the ``TelemetryCollector`` at scrape time and is
registered in a registry built per scrape: Penguin keeps no module-level state, so the client
library's global ``REGISTRY`` is never touched (two cores in one process never mix metrics).
Every per-agent metric carries the ``agent_id`` label. Latency is exposed in seconds, as a
histogram (aggregatable across instances) plus p50/p95 gauges over the recent turns.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from penguin.telemetry.collector import TelemetryCollector

#: The content type of ``render``'s output (the classic text format every Prometheus reads).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_TOOL_OUTCOMES = ("allowed", "denied", "errors", "timeouts")


class PenguinMetrics(Collector):
    """Yields Penguin's metric families from one collector's current state."""

    def __init__(self, telemetry: TelemetryCollector) -> None:
        self._t = telemetry

    def collect(self) -> Iterator[Metric]:
        t = self._t
        summary = t.summary()
        envelopes = CounterMetricFamily("penguin_bus_envelopes", "Envelopes seen on the bus by message type.",
                                        labels=["message_type"])
        for message_type, n in summary.messages.get("by_type", {}).items():
            envelopes.add_metric([message_type], n)
        yield envelopes
        yield CounterMetricFamily("penguin_telemetry_dropped_envelopes",
                                  "Envelopes the telemetry subscription dropped (not counted).", value=t.dropped)

        agent_envelopes = CounterMetricFamily("penguin_agent_envelopes", "Envelopes involving an agent.",
                                              labels=["agent_id", "message_type"])
        turns = CounterMetricFamily("penguin_agent_turns", "Completed turns.", labels=["agent_id"])
        tokens = CounterMetricFamily("penguin_agent_tokens", "Model tokens by direction.",
                                     labels=["agent_id", "direction"])
        errors = CounterMetricFamily("penguin_agent_errors", "Failures by kind (turn, receipt, task).",
                                     labels=["agent_id", "kind"])
        tools = CounterMetricFamily("penguin_agent_tool_calls", "Tool calls by policy outcome.",
                                    labels=["agent_id", "outcome"])
        duration = HistogramMetricFamily("penguin_agent_turn_duration_seconds", "Whole-turn latency.",
                                         labels=["agent_id"])
        quantiles = GaugeMetricFamily("penguin_agent_turn_latency_seconds",
                                      "Turn latency percentiles over the recent turns.",
                                      labels=["agent_id", "quantile"])
        for agent_id, entry in summary.agents.items():
            for message_type, n in entry["messages"]["by_type"].items():
                agent_envelopes.add_metric([agent_id, message_type], n)
            turns.add_metric([agent_id], entry["turns"])
            tokens.add_metric([agent_id, "input"], entry["tokens"]["input_tokens"])
            tokens.add_metric([agent_id, "output"], entry["tokens"]["output_tokens"])
            for kind, n in entry["errors"].items():
                errors.add_metric([agent_id, kind], n)
            for outcome in _TOOL_OUTCOMES:
                tools.add_metric([agent_id, outcome], entry["tool_calls"][outcome])
            stats = t.agents.get(agent_id)
            if stats is not None and stats.latency.count:
                lat = stats.latency
                duration.add_metric([agent_id], lat.cumulative_buckets(), lat.total_ms / 1000)
                quantiles.add_metric([agent_id, "0.5"], lat.percentile(0.5) / 1000)
                quantiles.add_metric([agent_id, "0.95"], lat.percentile(0.95) / 1000)
        yield from (agent_envelopes, turns, tokens, errors, tools, duration, quantiles)

        tasks = GaugeMetricFamily("penguin_tasks", "Tasks by current status.", labels=["status"])
        for status, n in summary.tasks["by_status"].items():
            tasks.add_metric([status], n)
        yield tasks
        receipts = CounterMetricFamily("penguin_receipts", "Receipt transitions by status.", labels=["status"])
        for status, n in summary.receipts.items():
            receipts.add_metric([status], n)
        yield receipts
        yield GaugeMetricFamily("penguin_rooms", "Rooms.", value=summary.rooms["count"])
        room_posts = CounterMetricFamily("penguin_room_posts", "Posts to a room (not replies).", labels=["room"])
        for name, room in summary.rooms["rooms"].items():
            room_posts.add_metric([name], room["posts"])
        yield room_posts
        yield GaugeMetricFamily("penguin_agents", "Agents listed in telemetry.", value=len(summary.agents))


def render(telemetry: TelemetryCollector) -> bytes:
    """The Prometheus text exposition of ``telemetry`` now (content type ``CONTENT_TYPE``)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PenguinMetrics(telemetry))
    return generate_latest(registry)
