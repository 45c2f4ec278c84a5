"""``ChatFastPath``: plain JSON ``POST /api/v1/chat`` answered without FastAPI's per-request machinery.

A chat is the API's hot request: under 50 concurrent chats (benchmark W3 over REST) FastAPI's
routing, dependency solving and response validation were a fifth of the server's CPU per turn.
This pure ASGI middleware answers the common case itself, with the very same steps the route
takes: the same ``ChatRequest`` model validates the same decoded JSON (stdlib decoder, python mode,
as FastAPI does), the same ``TurnTracker`` runs ``core.chat``, the reply is ``ChatResult.to_dict`` (exactly
``ChatResponse``'s fields), and an error of the turn goes to the app's own exception handler.

Anything else is handed, body replayed, to the FastAPI route: another method or content type,
a body that does not decode or validate (so malformed JSON and validation problems keep their
exact problem+json answers), ``streaming: true``, or a client gone before its body arrived.
It sits inside the authentication and body-limit middleware, which still see every request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from penguin.api.schemas import ChatRequest
from penguin.api.state import ApiState

CHAT_PATH = "/api/v1/chat"

#: ``(exception type -> handler)`` as registered on the app (``app.exception_handlers``).
Handlers = Mapping[Any, Any]


class ChatFastPath:
    """Serve non-streaming JSON chats directly; pass every other request to ``app`` unchanged."""

    def __init__(self, app: ASGIApp, *, state: ApiState, handlers: Handlers, path: str = CHAT_PATH) -> None:
        self.app = app
        self._state = state
        self._handlers = handlers
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self._path or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        chunks: list[bytes] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = _parse(b"".join(chunks)) if messages[-1]["type"] == "http.request" else None
        if body is None or body.streaming:
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            result = await self._state.tracker.run(self._state.core.chat(body.text, **body.core_options()))
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise  # as from the route: the server-error middleware logs it and answers 500
            response: Response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        # What ``Response(content, media_type="application/json")`` sends, without building one.
        content = orjson.dumps(result.to_dict(), default=str)
        headers = [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _handler_for(self, exc: Exception) -> Any:
        """The handler Starlette's exception middleware would pick (500/``Exception`` excluded)."""
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in self._handlers:
                return self._handlers[cls]
        return None


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bool(value.partition(b";")[0].strip().lower() == b"application/json")
    return False


def _parse(raw: bytes) -> ChatRequest | None:
    """The validated request, or None when the route must answer (with its exact error)."""
    if not raw:
        return None
    try:
        # The stdlib's decoder, as the route's: orjson would read an integer over 64 bits as a
        # float, which validation then accepts where the route refuses it.
        return ChatRequest.model_validate(json.loads(raw))
    except Exception:  # undecodable, invalid, or a validator's own error: the route answers it
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replaying_receive() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replaying_receive


__all__ = ["CHAT_PATH", "ChatFastPath"]
