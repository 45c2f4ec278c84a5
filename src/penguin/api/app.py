"""``create_app``: the FastAPI app over one ``PenguinCore``.

Layers, outermost first: the request context (``api.requests``: request id, HTTP metrics, trace
context, one traceback per 500), authentication (when ``Settings.api_key`` is set), the body limit
(``Settings.max_body_bytes``), the chat fast path (``api.fastpath``), then FastAPI with the
error handlers of ``api.errors`` and the routers under ``/api/v1``. The lifespan starts the core
and, on shutdown, drains in-flight turns (finish within the grace period, else cancel: the engine
records cancelled turns) before stopping the core it owns.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

import penguin
from penguin.api.errors import install_error_handlers
from penguin.api.fastpath import ChatFastPath
from penguin.api.middleware import AuthMiddleware, BodyLimitMiddleware
from penguin.api.openapi import build_openapi, install_docs
from penguin.api.requests import PenguinApp
from penguin.api.routes import (
    agents,
    chat,
    conversations,
    coordination,
    memory,
    messages,
    meta,
    providers,
    tasks,
    telemetry,
    tools,
)
from penguin.api.state import ApiState
from penguin.api.ws import router as ws_router
from penguin.api.ws_messages import router as ws_messages_router
from penguin.config import Settings
from penguin.core import PenguinCore
from penguin.dashboard import mount_console
from penguin.interop import a2a, mcp_server, openai_face

API_PREFIX = "/api/v1"

_DESCRIPTION = """\
Penguin hosts many LLM agents in one server, each addressed by an `agent_id` with its own
conversation, model, tools and tasks. Errors are `application/problem+json` bodies that say what
was wrong and how to fix it. When the server has an API key, send `Authorization: Bearer <key>`
(every route except `/api/v1/health`). The WebSocket `/api/v1/chat/stream` multiplexes chats for
many agents on one connection; see docs/api.md.
"""


def create_app(
    core: PenguinCore | None = None,
    *,
    settings: Settings | None = None,
    shutdown_grace: float = 30.0,
    ws_send_queue: int = 1024,
    ws_max_inflight: int = 64,
    stop_core: bool | None = None,
) -> FastAPI:
    """Build the API app.

    Args:
        core: the core to serve. Default: a new one from ``settings``, owned by the app (started
            and stopped by its lifespan). A core passed in is started by the lifespan too, but
            stopped by its owner.
        settings: used only when ``core`` is None (default: from the environment).
        shutdown_grace: seconds in-flight turns may take to finish on shutdown before they are
            cancelled.
        ws_send_queue: events buffered per WebSocket connection before a slow client is
            disconnected.
        ws_max_inflight: concurrent chats per WebSocket connection.
        stop_core: stop the core when the app shuts down (default: only a core the app made).
    """
    owns_core = core is None if stop_core is None else stop_core
    if core is None:
        core = PenguinCore(settings)
    state = ApiState(
        core=core, shutdown_grace=shutdown_grace, ws_send_queue=ws_send_queue, ws_max_inflight=ws_max_inflight
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await state.core.start()
        try:
            async with AsyncExitStack() as faces:
                if mcp_face is not None:
                    await faces.enter_async_context(mcp_face.running())
                yield
        finally:
            await state.tracker.drain(state.shutdown_grace)
            if owns_core:
                await state.core.stop()

    app = PenguinApp(
        title="Penguin API",
        version=penguin.__version__,
        description=_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # served by install_docs, from the package instead of a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.penguin = state
    install_error_handlers(app)
    for module in (chat, agents, conversations, tasks, messages, coordination, memory, tools, telemetry, meta,
                   providers):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(telemetry.metrics_router)
    app.include_router(ws_router, prefix=API_PREFIX)
    app.include_router(ws_messages_router, prefix=API_PREFIX)
    app.include_router(openai_face.router)  # /v1/chat/completions, /v1/models
    app.include_router(a2a.router)  # /.well-known/agent-card.json, /a2a[/{agent_id}]
    mcp_face = mcp_server.mount(app, core, state.tracker.run)  # /mcp (streamable HTTP)
    # Innermost of ours: plain JSON chats skip FastAPI's per-request work (see api.fastpath).
    app.add_middleware(ChatFastPath, state=state, handlers=app.exception_handlers)
    app.add_middleware(BodyLimitMiddleware, max_bytes=core.settings.max_body_bytes)
    if core.settings.api_key:
        app.add_middleware(AuthMiddleware, api_key=core.settings.api_key)
    mount_console(app)  # outermost: the console's static files load without the API key
    install_docs(app)
    app.openapi = lambda: build_openapi(app, api_key=_has_api_key(app))  # type: ignore[method-assign]
    return app


def _has_api_key(app: FastAPI) -> bool:
    state: ApiState = app.state.penguin
    return bool(state.core.settings.api_key)


__all__ = ["API_PREFIX", "create_app"]
