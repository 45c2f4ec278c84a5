"""Prometheus metrics of one core (``GET /metrics``): live instruments plus the telemetry collector.

``RuntimeMetrics`` owns a ``CollectorRegistry`` of its own: Penguin keeps no module-level state,
so the client library's global ``REGISTRY`` is never touched and two cores in one process never
mix metrics. On it live

* instruments observed as things happen: HTTP request duration by method, route template and
  status; model-call duration by provider and outcome, retries and errors by provider (and error
  code);
* the process collector (CPU, memory, open files of this process);
* ``PenguinMetrics``, read at scrape time from the ``TelemetryCollector``: bus envelopes, per-agent
  turns, tokens, errors, tool calls and turn latency (histograms only: quantile gauges cannot be
  aggregated across instances), tasks, receipts, rooms, and the queue depths.

Per-agent series are capped: the ``agent_limit`` most active agents (turns plus envelopes) keep
their own ``agent_id`` label and the rest are summed under ``OTHER_AGENTS``, so a server with
thousands of agents exposes a bounded number of lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from penguin.telemetry.collector import TelemetryCollector
from penguin.telemetry.stats import AgentStats, Latency

#: The content type of ``render``'s output (the classic text format every Prometheus reads).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: The ``agent_id`` label of the agents past the cap. Not a valid agent id (``~``), so it can
#: never be mistaken for a real agent.
OTHER_AGENTS = "~other"
_TOOL_OUTCOMES = ("allowed", "denied", "errors", "timeouts")
#: Seconds; HTTP requests and model calls span sub-millisecond (scripted, cached) to minutes.
_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

QueueDepths = Callable[[], Mapping[str, int]]


class RuntimeMetrics:
    """The live instruments and the registry ``/metrics`` renders.

    The instruments exist from construction (the model registry and the engine are built before
    the bus); ``watch`` adds the collector's families once the core has built it.

    Args:
        agent_limit: agents that keep their own ``agent_id`` label (the most active first).
    """

    def __init__(self, *, agent_limit: int) -> None:
        self._agent_limit = agent_limit
        self.registry = CollectorRegistry(auto_describe=False)
        self.http_duration = Histogram(
            "penguin_http_request_duration_seconds", "HTTP request duration by route template and status.",
            ["method", "route", "status"], registry=self.registry, buckets=_BUCKETS,
        )
        self.model_duration = Histogram(
            "penguin_model_call_duration_seconds", "Model call duration (retries included) by provider.",
            ["provider", "outcome"], registry=self.registry, buckets=_BUCKETS,
        )
        self.model_retries = Counter(
            "penguin_model_call_retries", "Model requests retried (429, 5xx, timeouts, connection errors).",
            ["provider"], registry=self.registry,
        )
        self.model_errors = Counter(
            "penguin_model_call_errors", "Model calls that failed, by provider and error code.",
            ["provider", "code"], registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        #: The histogram child of each (provider, outcome): ``labels()`` costs more than ``observe``.
        self._model_children: dict[tuple[str, str], Any] = {}

    def watch(self, telemetry: TelemetryCollector, *, queue_depths: QueueDepths) -> None:
        """Expose ``telemetry`` and ``queue_depths`` (``{queue: items waiting}``, read at each scrape)."""
        self.registry.register(PenguinMetrics(telemetry, agent_limit=self._agent_limit, queue_depths=queue_depths))

    def observe_http(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_duration.labels(method, route, str(status)).observe(seconds)

    def observe_model_call(self, provider: str, seconds: float, error_code: str | None = None) -> None:
        """One model call ended (``error_code`` is the ``PenguinError.code`` when it failed)."""
        key = (provider, "ok" if error_code is None else "error")
        child = self._model_children.get(key)
        if child is None:
            child = self._model_children[key] = self.model_duration.labels(*key)
        child.observe(seconds)
        if error_code is not None:
            self.model_errors.labels(provider, error_code).inc()

    def count_retry(self, provider: str) -> None:
        self.model_retries.labels(provider).inc()

    def render(self) -> bytes:
        """The Prometheus text exposition now (content type ``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


def _activity(stats: AgentStats | None) -> int:
    return 0 if stats is None else stats.turns + stats.sent + stats.received


class PenguinMetrics(Collector):
    """Yields Penguin's metric families from one collector's current state."""

    def __init__(self, telemetry: TelemetryCollector, *, agent_limit: int, queue_depths: QueueDepths) -> None:
        self._t = telemetry
        self._limit = agent_limit
        self._queue_depths = queue_depths

    def _labelled(self, agents: Mapping[str, Any]) -> dict[str, str]:
        """``agent_id -> label``: the ``agent_limit`` most active keep their id, the rest ``OTHER_AGENTS``."""
        if len(agents) <= self._limit:
            return {a: a for a in agents}
        ranked = sorted(agents, key=lambda a: (-_activity(self._t.agents.get(a)), a))
        kept = set(ranked[: self._limit])
        return {a: a if a in kept else OTHER_AGENTS for a in agents}

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
        yield from self._per_agent(summary.agents)

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
        depth = GaugeMetricFamily("penguin_queue_depth",
                                  "Work waiting: turns queued behind their conversation's writer, "
                                  "bus messages not yet processed.", labels=["queue"])
        for queue, n in self._queue_depths().items():
            depth.add_metric([queue], n)
        yield depth

    def _per_agent(self, agents: Mapping[str, Any]) -> Iterator[Metric]:
        labels = self._labelled(agents)
        sums: dict[tuple[str, ...], float] = {}

        def add(name: str, *key: str, n: float) -> None:
            sums[(name, *key)] = sums.get((name, *key), 0) + n

        latencies: dict[str, Latency] = {}
        for agent_id, entry in agents.items():
            label = labels[agent_id]
            for message_type, n in entry["messages"]["by_type"].items():
                add("envelopes", label, message_type, n=n)
            add("turns", label, n=entry["turns"])
            add("tokens", label, "input", n=entry["tokens"]["input_tokens"])
            add("tokens", label, "output", n=entry["tokens"]["output_tokens"])
            for kind, n in entry["errors"].items():
                add("errors", label, kind, n=n)
            for outcome in _TOOL_OUTCOMES:
                add("tools", label, outcome, n=entry["tool_calls"][outcome])
            stats = t_stats.latency if (t_stats := self._t.agents.get(agent_id)) is not None else None
            if stats is not None and stats.count:
                merged = latencies.setdefault(label, Latency())
                merged.count += stats.count
                merged.total_ms += stats.total_ms
                merged.buckets = [a + b for a, b in zip(merged.buckets, stats.buckets, strict=True)]

        families = {
            "envelopes": CounterMetricFamily("penguin_agent_envelopes", "Envelopes involving an agent.",
                                             labels=["agent_id", "message_type"]),
            "turns": CounterMetricFamily("penguin_agent_turns", "Completed turns.", labels=["agent_id"]),
            "tokens": CounterMetricFamily("penguin_agent_tokens", "Model tokens by direction.",
                                          labels=["agent_id", "direction"]),
            "errors": CounterMetricFamily("penguin_agent_errors", "Failures by kind (turn, receipt, task).",
                                          labels=["agent_id", "kind"]),
            "tools": CounterMetricFamily("penguin_agent_tool_calls", "Tool calls by policy outcome.",
                                         labels=["agent_id", "outcome"]),
        }
        for (name, *key), n in sums.items():
            families[name].add_metric(key, n)
        yield from families.values()
        duration = HistogramMetricFamily("penguin_agent_turn_duration_seconds", "Whole-turn latency.",
                                         labels=["agent_id"])
        for label, lat in latencies.items():
            duration.add_metric([label], lat.cumulative_buckets(), lat.total_ms / 1000)
        yield duration


__all__ = ["CONTENT_TYPE", "OTHER_AGENTS", "PenguinMetrics", "RuntimeMetrics"]
