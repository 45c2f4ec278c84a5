"""``ApiState``: what one API app holds, reachable from every route through ``app.state``.

The app is built around one ``PenguinCore`` (the composition root); this record adds only what
exists because of HTTP: the turn tracker, WebSocket counters and the serving limits. Routes get
it through the ``Api`` dependency, never from a module-level variable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, cast

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from penguin.api.inflight import TurnTracker
from penguin.core import PenguinCore


@dataclass(slots=True)
class WebSocketCounters:
    #: Open ``/api/v1/chat/stream`` connections.
    connections: int = 0
    #: Connections accepted since start.
    accepted_total: int = 0
    #: Connections closed because the client read too slowly (send queue full).
    overflow_disconnects: int = 0


@dataclass(slots=True, kw_only=True)
class ApiState:
    core: PenguinCore
    tracker: TurnTracker = field(default_factory=TurnTracker)
    websockets: WebSocketCounters = field(default_factory=WebSocketCounters)
    #: Seconds ``drain`` waits for running turns on shutdown before cancelling them.
    shutdown_grace: float = 30.0
    #: Events buffered per WebSocket connection before the slow client is disconnected.
    ws_send_queue: int = 1024
    #: Concurrent chats one WebSocket connection may have in flight.
    ws_max_inflight: int = 64
    started_at: float = field(default_factory=time.monotonic)


def state_of(conn: HTTPConnection) -> ApiState:
    """The ``ApiState`` of the app serving ``conn`` (a request or a WebSocket)."""
    return cast(ApiState, conn.app.state.penguin)


async def _api(request: Request) -> ApiState:
    # ``async`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a thread
    # hand-off on every request (measured: the largest per-request cost of the API).
    return state_of(request)


Api = Annotated[ApiState, Depends(_api)]
"""Route parameter type that injects the ``ApiState``."""
