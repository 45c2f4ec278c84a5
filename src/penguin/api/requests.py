"""The outermost layer of the API: a request id, HTTP metrics, trace context, one traceback per 500.

``RequestContext`` wraps the whole Starlette stack, Starlette's ``ServerErrorMiddleware``
included. For each HTTP request it

* takes the id from an incoming ``X-Request-ID`` (when it is a plausible id: 1-128 characters of
  ``A-Z a-z 0-9 . _ : / + = -``) or makes one, binds it for log lines (``telemetry.logs``) and
  echoes it as ``X-Request-ID`` on the response;
* observes the request's duration by method, route template (``/api/v1/agents/{agent_id}``, never
  the raw path, so ids do not multiply series; ``unmatched`` for paths no route serves) and status;
* when tracing is on, starts the server span as a child of the W3C ``traceparent`` it was sent;
* keeps an unhandled exception to one traceback: the app's handler (``api.errors``) has logged it
  with the request id and sent the 500, and Starlette re-raises it only so that the server can log
  it a second time, so it ends here.

WebSocket connections get a request id for their log lines too (not echoed: a handshake response
carries no headers of ours).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from penguin.api.fastpath import CHAT_PATH
from penguin.telemetry.logs import bind_request, unbind_request
from penguin.telemetry.prometheus import RuntimeMetrics
from penguin.telemetry.tracing import Tracing

REQUEST_ID_HEADER = b"x-request-id"
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:/+=-]{1,128}$")
UNMATCHED = "unmatched"


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a plausible id, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == REQUEST_ID_HEADER:
            if _REQUEST_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str:
    """The route template that served ``scope`` (the router records the route as it matches)."""
    route_path = getattr(scope.get("route"), "path", None)
    if isinstance(route_path, str):
        # A route of an included router knows its path below the router's prefix
        # (``/agents/{agent_id}``): the prefix is the leading part of the path it did not match.
        suffix = [p for p in route_path.split("/") if p]
        if ":path}" in route_path:
            return route_path
        segments = [p for p in str(scope.get("path", "")).split("/") if p]
        prefix = segments[: len(segments) - len(suffix)] if suffix else segments
        return "/" + "/".join([*prefix, *suffix])
    # The chat fast path answers before the router runs (see api.fastpath).
    return CHAT_PATH if scope.get("path") == CHAT_PATH else UNMATCHED


class RequestContext:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, metrics: RuntimeMetrics, tracing: Tracing) -> None:
        self.app = app
        self._metrics = metrics
        self._tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            token = bind_request(request_id_of(scope))
            try:
                await self.app(scope, receive, send)
            finally:
                unbind_request(token)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = bind_request(request_id)
        echoed = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        span = self._tracing.server_span(scope, request_id) if self._tracing.enabled else None
        try:
            if span is None:
                await self.app(scope, receive, send_with_id)
            else:
                with span.activate():
                    await self.app(scope, receive, send_with_id)
        except Exception:  # noqa: S110 - logged once, with its request id, by the app's 500 handler
            pass
        finally:
            route = route_of(scope)
            if span is not None:
                span.finish(route, status)
            self._metrics.observe_http(scope["method"], route, status, time.perf_counter() - started)
            unbind_request(token)


class PenguinApp(FastAPI):
    """The API app: a FastAPI whose middleware stack is wrapped in ``RequestContext``."""

    def build_middleware_stack(self) -> ASGIApp:
        core: Any = self.state.penguin.core
        return RequestContext(super().build_middleware_stack(), metrics=core.metrics, tracing=core.tracing)


__all__ = ["REQUEST_ID_HEADER", "UNMATCHED", "PenguinApp", "RequestContext", "request_id_of", "route_of"]
