"""Request and response models of the telemetry routes (``/api/v1/telemetry``, ``/ws/telemetry``).

They mirror ``penguin.telemetry.TelemetrySummary`` field for field; the server validates the
summary through them and ``PenguinClient.get_telemetry_summary`` parses them back.
"""

from __future__ import annotations

from pydantic import Field

from penguin.api.schemas import AgentId, RequestModel, ResponseModel

#: Bounds (seconds) of the ``/ws/telemetry`` push interval.
MIN_INTERVAL = 0.2
MAX_INTERVAL = 60.0


class TelemetryStreamParams(RequestModel):
    """The query parameters of ``/api/v1/ws/telemetry``."""

    model_config = RequestModel.model_config | {"strict": False}  # query values arrive as strings

    agent_id: AgentId | None = None
    interval: float = Field(default=1.0, ge=MIN_INTERVAL, le=MAX_INTERVAL,
                            description="Seconds between snapshots (0.2-60).")


class LatencyInfo(ResponseModel):
    """Milliseconds: ``count`` and ``mean`` over every turn, percentiles over the recent ones."""

    count: int = 0
    mean: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    max: float = 0.0


class TokenTotals(ResponseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class AgentMessages(ResponseModel):
    sent: int = 0
    received: int = 0
    by_type: dict[str, int] = Field(default_factory=dict)
    by_channel: dict[str, int] = Field(default_factory=dict)


class ToolCallCounts(ResponseModel):
    #: Tool calls made inside completed turns.
    in_turns: int = 0
    allowed: int = 0
    denied: int = 0
    errors: int = 0
    timeouts: int = 0
    denied_by_reason: dict[str, int] = Field(default_factory=dict)


class AgentTelemetry(ResponseModel):
    turns: int = 0
    tokens: TokenTotals = Field(default_factory=TokenTotals)
    latency_ms: LatencyInfo = Field(default_factory=LatencyInfo)
    model_latency_ms: LatencyInfo = Field(default_factory=LatencyInfo)
    errors: dict[str, int] = Field(default_factory=dict)
    messages: AgentMessages = Field(default_factory=AgentMessages)
    tasks: dict[str, int] = Field(default_factory=dict)
    receipts: dict[str, int] = Field(default_factory=dict)
    tool_calls: ToolCallCounts = Field(default_factory=ToolCallCounts)
    model: str | None = None
    last_seen: float | None = None


class MessageTelemetry(ResponseModel):
    total: int = 0
    by_type: dict[str, int] = Field(default_factory=dict)
    by_channel: dict[str, int] = Field(default_factory=dict)
    by_agent: dict[str, int] = Field(default_factory=dict)


class TaskTelemetry(ResponseModel):
    by_status: dict[str, int] = Field(default_factory=dict)
    total: int = 0


class RoomTelemetry(ResponseModel):
    members: int = 0
    posts: int = 0
    replies: int = 0


class RoomsTelemetry(ResponseModel):
    count: int = 0
    rooms: dict[str, RoomTelemetry] = Field(default_factory=dict)


class TelemetrySummaryInfo(ResponseModel):
    """Runtime statistics since the server started; one agent's only when ``agent_id`` is set."""

    agent_id: str | None = None
    started_at: float = 0.0
    uptime_seconds: float = 0.0
    observed: int = 0
    dropped: int = 0
    messages: MessageTelemetry = Field(default_factory=MessageTelemetry)
    agents: dict[str, AgentTelemetry] = Field(default_factory=dict)
    agent_events: dict[str, int] = Field(default_factory=dict)
    turns: int = 0
    tokens: TokenTotals = Field(default_factory=TokenTotals)
    errors: dict[str, int] = Field(default_factory=dict)
    tasks: TaskTelemetry = Field(default_factory=TaskTelemetry)
    receipts: dict[str, int] = Field(default_factory=dict)
    rooms: RoomsTelemetry = Field(default_factory=RoomsTelemetry)
    tools: ToolCallCounts = Field(default_factory=ToolCallCounts)


__all__ = [
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "AgentTelemetry",
    "LatencyInfo",
    "TelemetryStreamParams",
    "TelemetrySummaryInfo",
]
