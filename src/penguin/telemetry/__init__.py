"""Runtime telemetry: a MessageBus subscriber aggregating message, agent, room, task, token and
latency statistics by ``agent_id``, and their Prometheus exposition."""

from penguin.telemetry.collector import CollectorState, TelemetryCollector
from penguin.telemetry.prometheus import CONTENT_TYPE, OTHER_AGENTS, RuntimeMetrics
from penguin.telemetry.summary import TelemetrySummary

__all__ = [
    "CONTENT_TYPE", "OTHER_AGENTS", "CollectorState", "RuntimeMetrics", "TelemetryCollector", "TelemetrySummary",
]
