"""The web console: static files served at ``/console`` by the API app.

The console is plain HTML/JS/CSS (``static/``, no build step, nothing fetched from the internet)
that reads only the public REST and WebSocket API, the same one ``PenguinClient`` uses: agents from
``GET /api/v1/agents``, per-agent metrics from ``GET /api/v1/telemetry`` refreshed by
``/api/v1/ws/telemetry``, the live feed from ``/api/v1/ws/messages``, chat through
``POST /api/v1/chat`` and history from the conversation routes. It is the reference
implementation of a dashboard fed by the telemetry API.

Why an outer ASGI layer instead of ``app.mount``: the API key guards every API route, but the
console's own files hold no data and must load before the user has typed the key (the page then
sends it on every API call). ``ConsoleMiddleware`` sits outside ``AuthMiddleware`` and answers
``/console`` paths itself, from the static directory only; it never forwards them to the API, so
it cannot open an API route to unauthenticated callers.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Where the console is served.
CONSOLE_PATH = "/console"

#: The console's files (``index.html``, ``console.js``, ``console.css``), shipped as package data.
STATIC_DIR = Path(__file__).with_name("static")

#: Sent with every console file: the page may load only its own files and talk only to this
#: server (HTTP and WebSocket), so nothing is fetched from elsewhere and injected markup cannot run.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (
        b"content-security-policy",
        b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
)


class ConsoleMiddleware:
    """Serve ``CONSOLE_PATH`` and everything under it from ``directory``; pass other requests on.

    ``/console`` redirects to ``/console/`` (so the page's relative links resolve), which serves
    ``index.html``. Only GET and HEAD are answered (405 otherwise, by ``StaticFiles``).
    """

    def __init__(self, app: ASGIApp, *, path: str = CONSOLE_PATH, directory: Path = STATIC_DIR) -> None:
        self.app = app
        self.path = path.rstrip("/")
        self._console = Router(routes=[Mount(self.path, app=StaticFiles(directory=directory, html=True))])

    def _owns(self, scope: Scope) -> bool:
        if scope["type"] != "http":
            return False
        path: str = scope["path"]
        return path == self.path or path.startswith(self.path + "/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._owns(scope):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self._console(scope, receive, send_with_headers)
        except HTTPException as exc:
            # This layer is outside the app's exception handlers, so it answers its own 404/405.
            response = PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
            await response(scope, receive, send_with_headers)


def mount_console(app: FastAPI, *, path: str = CONSOLE_PATH) -> None:
    """Serve the console at ``path`` on ``app``, readable without the API key.

    Call it after the other middleware is added: the layer it adds must be the outermost, so the
    static files load before the user has entered the key.

    Args:
        app: the API app (``penguin.api.create_app``).
        path: where to serve the console.
    """
    app.add_middleware(ConsoleMiddleware, path=path)


__all__ = ["CONSOLE_PATH", "STATIC_DIR", "ConsoleMiddleware", "mount_console"]
