"""Runtime metrics: ``GET /api/v1/telemetry``, ``GET /metrics`` and ``/api/v1/ws/telemetry``.

All three read the core's ``TelemetryCollector``. The WebSocket pushes a summary snapshot right
away and then every ``interval`` seconds (0.2-60) until the client disconnects or the server
stops (close 1001); a bad query gets one ``error`` frame (problem body, 422 or 404) and close 1008.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Response, WebSocket
from pydantic import ValidationError

from penguin.api.errors import error_event, from_validation_errors
from penguin.api.routes._docs import problems
from penguin.api.schemas import AgentId
from penguin.api.schemas_telemetry import TelemetryStreamParams, TelemetrySummaryInfo
from penguin.api.state import Api, ApiState, state_of
from penguin.errors import PenguinError
from penguin.telemetry import CONTENT_TYPE, CollectorState

router = APIRouter(tags=["telemetry"])
#: Mounted at the root (``/metrics``), where Prometheus scrapes by default.
metrics_router = APIRouter(tags=["telemetry"])

#: Close code for a refused query (RFC 6455 "policy violation"), as ``/ws/messages`` uses.
CLOSE_POLICY = 1008


@router.get("/telemetry", response_model=TelemetrySummaryInfo, summary="Runtime metrics",
            responses=problems(404))
async def telemetry(api: Api, agent_id: Annotated[AgentId | None, Query()] = None) -> dict[str, Any]:
    """Message, agent, room, task, token and latency statistics; one agent's with ``agent_id``."""
    return (await api.core.telemetry_summary(agent_id)).to_dict()


_METRICS_EXAMPLE = (
    'penguin_agent_turns_total{agent_id="support"} 3.0\n'
    'penguin_http_request_duration_seconds_count{method="POST",route="/api/v1/chat",status="200"} 3.0\n'
    'penguin_model_call_duration_seconds_count{outcome="ok",provider="openai"} 3.0\n'
    'penguin_queue_depth{queue="turns"} 0.0\n'
)


@metrics_router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                    responses={200: {"content": {CONTENT_TYPE: {"example": _METRICS_EXAMPLE}},
                                     "description": "Prometheus text format"}})
async def metrics(api: Api) -> Response:
    """The metrics as Prometheus text exposition (see docs/observability.md).

    Per-agent series are labelled ``agent_id`` for the ``metrics_agent_limit`` most active agents
    and summed under ``agent_id="~other"`` past that.
    """
    await api.core.telemetry.flush()
    return Response(content=api.core.metrics.render(), media_type=CONTENT_TYPE)


@router.websocket("/ws/telemetry")
async def telemetry_stream(websocket: WebSocket) -> None:
    api = state_of(websocket)
    await websocket.accept()
    params = {k: v for k, v in websocket.query_params.items() if k != "token"}
    try:
        query = TelemetryStreamParams.model_validate(params)
        first = await api.core.telemetry_summary(query.agent_id)
    except (ValidationError, PenguinError) as exc:
        error = from_validation_errors(exc.errors()) if isinstance(exc, ValidationError) else exc
        agent_id = params.get("agent_id")
        await websocket.send_text(orjson.dumps(error_event(error, agent_id, None)).decode())
        await websocket.close(CLOSE_POLICY, error.detail[:120])
        return
    api.websockets.connections += 1
    api.websockets.accepted_total += 1
    try:
        await _push(websocket, api, query, first.to_dict())
    finally:
        api.websockets.connections -= 1


async def _push(websocket: WebSocket, api: ApiState, query: TelemetryStreamParams, first: dict[str, Any]) -> None:
    async def until_disconnect() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # this stream takes no client frames

    receiver = asyncio.create_task(until_disconnect(), name="penguin-ws-telemetry-receive")
    seq = 0
    snapshot = first
    try:
        while True:
            seq += 1
            await websocket.send_text(orjson.dumps({"type": "telemetry", "seq": seq, **snapshot}).decode())
            done, _ = await asyncio.wait((receiver,), timeout=query.interval)
            if done:
                return
            if api.core.telemetry.state is not CollectorState.RUNNING:
                with contextlib.suppress(Exception):
                    await websocket.close(1001, "the server is shutting down")
                return
            try:
                snapshot = (await api.core.telemetry_summary(query.agent_id)).to_dict()
            except PenguinError as exc:  # the agent was removed while watched
                await websocket.send_text(orjson.dumps(error_event(exc, query.agent_id, None)).decode())
                await websocket.close(CLOSE_POLICY, exc.detail[:120])
                return
    finally:
        receiver.cancel()
        await asyncio.wait((receiver,))
