"""Pure ASGI middleware of the API: bearer-token authentication and the request body limit.

Both are plain ASGI (not ``BaseHTTPMiddleware``), so they never buffer responses, work for
streaming responses and WebSockets alike, and cannot swallow a client disconnect.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from penguin.api.errors import PROBLEM_JSON, AuthenticationRequired, problem, status_for
from penguin.errors import PayloadTooLarge, PenguinError

#: Paths open without the API key (liveness probes).
PUBLIC_PATHS = frozenset({"/api/v1/health"})

#: After the limit is exceeded, at most this many more bytes are read and discarded before the 413
#: is sent: a client still uploading would otherwise see a reset instead of the answer.
_DISCARD_CAP = 8 * 1024 * 1024


async def send_problem(send: Send, exc: PenguinError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send ``exc`` as a complete problem+json response on a raw ASGI ``send``."""
    body = orjson.dumps(problem(exc))
    await send(
        {
            "type": "http.response.start",
            "status": status_for(exc),
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a 413 problem.

    The declared ``Content-Length`` is checked first; the body is then read and counted as it
    streams in (chunked uploads declare no length), and replayed to the app once it is complete.
    Buffering is bounded by the limit itself (1 MiB by default).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            if declared - self.max_bytes <= _DISCARD_CAP:
                await _discard(receive, _DISCARD_CAP)
            await send_problem(send, self._too_large(declared))
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away; let the app see it
                replay: list[Message] = [message]
                break
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                if message.get("more_body", False):
                    total += await _discard(receive, _DISCARD_CAP)
                await send_problem(send, self._too_large(total))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replaying_receive() -> Message:
            if replay:
                return replay.pop(0)
            return await receive()

        await self.app(scope, replaying_receive, send)

    def _too_large(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is over the limit of {self.max_bytes} bytes (at least {size} bytes seen); "
            "send less, or raise the limit with PENGUIN_MAX_BODY_BYTES",
            field="body",
            limit=self.max_bytes,
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _discard(receive: Receive, cap: int) -> int:
    """Read and drop the rest of the body, up to ``cap`` bytes; return how many were read."""
    read = 0
    while read <= cap:
        message = await receive()
        if message["type"] != "http.request":
            break
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return read


class AuthMiddleware:
    """Require ``Authorization: Bearer <api_key>`` on every route except ``PUBLIC_PATHS``.

    WebSocket clients that cannot set headers (browsers) may pass ``?token=<api_key>`` instead.
    Keys are compared in constant time.
    """

    def __init__(self, app: ASGIApp, *, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope.get("path") in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if self._authorized(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before accepting makes the server answer the handshake with 403.
            await send({"type": "websocket.close", "code": 1008, "reason": "missing or wrong API key"})
            return
        await send_problem(
            send,
            AuthenticationRequired(
                "this server requires an API key: send 'Authorization: Bearer <key>' (PENGUIN_API_KEY)"
            ),
            headers=[(b"www-authenticate", b"Bearer")],
        )

    def _authorized(self, scope: Scope) -> bool:
        presented: bytes | None = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer":
                    presented = token.strip()
                break
        if presented is None and scope["type"] == "websocket":
            tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            if tokens:
                presented = tokens[0].encode("latin-1", "replace")
        return presented is not None and hmac.compare_digest(presented, self._key)


__all__ = ["PUBLIC_PATHS", "AuthMiddleware", "BodyLimitMiddleware", "send_problem"]
