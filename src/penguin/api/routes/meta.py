"""``GET /api/v1/health`` and ``GET /api/v1/version``."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

import penguin
from penguin.api.inflight import TrackerState
from penguin.api.routes._docs import problems
from penguin.api.schemas import HealthInfo, VersionInfo
from penguin.api.state import Api

router = APIRouter(tags=["meta"])


@router.get("/health", response_model=HealthInfo, summary="Liveness and load", responses=problems())
async def health(api: Api) -> dict[str, Any]:
    """Always open, even when an API key is configured (for probes); reveals counts only."""
    ws = api.websockets
    return {
        "status": "ok" if api.tracker.state is TrackerState.OPEN else "stopping",
        "version": penguin.__version__,
        "uptime_seconds": round(time.monotonic() - api.started_at, 3),
        "inflight_turns": len(api.tracker),
        "websocket": {
            "connections": ws.connections,
            "accepted_total": ws.accepted_total,
            "overflow_disconnects": ws.overflow_disconnects,
        },
    }


@router.get("/version", response_model=VersionInfo, summary="Server and API version", responses=problems())
async def version() -> dict[str, Any]:
    return {"version": penguin.__version__, "api": "v1"}
