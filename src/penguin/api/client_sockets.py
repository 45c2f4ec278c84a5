"""The streaming halves of ``PenguinClient``: server-sent events and the two WebSockets.

``ChatSocket`` carries many concurrent chats on ``/api/v1/chat/stream``; ``MessageStream`` follows
the MessageBus on ``/api/v1/ws/messages``. Both raise the client's typed errors.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import urlencode

import orjson
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from penguin.api.client_base import APIConnectionError, error_for
from penguin.api.schemas import ChatEvent, ChatOptions
from penguin.api.schemas_orchestration import EnvelopeInfo
from penguin.api.schemas_telemetry import TelemetrySummaryInfo

FrameT = TypeVar("FrameT", bound=BaseModel)


class ChatSocket:
    """The multiplexed chat WebSocket: send many chats, read every event (each names its request).

    Use ``async with client.chat_stream_socket() as ws``; ``await ws.chat(...)`` returns the
    request id, ``async for event in ws`` yields ``ChatEvent`` objects until the server closes.
    """

    def __init__(self, url: str, *, headers: dict[str, str], open_timeout: float) -> None:
        self.url = url
        self._headers = headers
        self._open_timeout = open_timeout
        self._conn: ClientConnection | None = None

    async def __aenter__(self) -> ChatSocket:
        self._conn = await _open(self.url, self._headers, self._open_timeout)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connection(self) -> ClientConnection:
        if self._conn is None:
            raise APIConnectionError("the socket is not open; use 'async with client.chat_stream_socket()'")
        return self._conn

    async def chat(self, text: str, options: ChatOptions | None = None, *, request_id: str | None = None) -> str:
        """Start a chat on this socket and return its request id (events carry it)."""
        request_id = request_id or uuid.uuid4().hex
        fields = (options or ChatOptions()).model_dump(exclude_none=True)
        fields.pop("streaming", None)
        await self.send({"type": "chat", "request_id": request_id, "text": text, **fields})
        return request_id

    async def cancel(self, request_id: str) -> None:
        await self.send({"type": "cancel", "request_id": request_id})

    async def send(self, frame: dict[str, Any]) -> None:
        """Send a raw frame (for frames the helpers do not cover)."""
        await self.connection.send(orjson.dumps(frame).decode())

    async def recv(self) -> ChatEvent:
        """The next event. Raises ``APIConnectionError`` when the server closed the socket."""
        try:
            raw = await self.connection.recv()
        except ConnectionClosed as exc:
            raise APIConnectionError(f"the chat socket closed (code {exc.rcvd.code if exc.rcvd else None})") from exc
        return ChatEvent.model_validate(orjson.loads(raw))

    def __aiter__(self) -> AsyncIterator[ChatEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ChatEvent]:
        async for raw in self.connection:
            yield ChatEvent.model_validate(orjson.loads(raw))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


async def _open(url: str, headers: dict[str, str], open_timeout: float) -> ClientConnection:
    try:
        return await connect(url, additional_headers=headers, open_timeout=open_timeout, max_size=None)
    except InvalidStatus as exc:
        status = exc.response.status_code
        # The server refuses an unauthenticated handshake with 403 (a WebSocket cannot get a 401).
        detail = {"detail": f"the WebSocket handshake was refused with HTTP {status}"}
        raise error_for(401 if status == 403 else status, detail) from exc
    except (OSError, TimeoutError) as exc:
        raise APIConnectionError(f"cannot open {url}: {exc}") from exc


class FrameStream(Generic[FrameT]):
    """A server-push WebSocket whose JSON frames are one response model.

    ``async for frame in stream`` yields parsed frames; a normal close (1000/1001) ends the
    iteration, while a refused query (an ``error`` frame) or being cut off (e.g. 1008 for a slow
    reader) raises the client's typed error.
    """

    #: The response model of each frame, and the stream's name in messages.
    model: type[FrameT]
    name: str

    def __init__(self, url: str, *, headers: dict[str, str], open_timeout: float, params: dict[str, Any]) -> None:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        self.url = f"{url}?{query}" if query else url
        self._headers = headers
        self._open_timeout = open_timeout
        self._conn: ClientConnection | None = None

    async def __aenter__(self) -> Self:
        self._conn = await _open(self.url, self._headers, self._open_timeout)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def recv(self) -> FrameT:
        """The next frame. Raises the problem of a refused query, or ``APIConnectionError`` on close."""
        if self._conn is None:
            raise APIConnectionError(f"the {self.name} stream is not open; use it with 'async with'")
        try:
            frame = orjson.loads(await self._conn.recv())
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd else ""
            raise APIConnectionError(f"the {self.name} stream closed: {reason or 'no reason given'}") from exc
        if frame.get("type") == "error":
            problem = frame.get("problem") or {}
            raise error_for(int(problem.get("status", 400)), problem)
        return self.model.model_validate(frame)

    def __aiter__(self) -> AsyncIterator[FrameT]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[FrameT]:
        while True:
            try:
                yield await self.recv()
            except APIConnectionError:
                # A normal close (client or server shutdown) ends the iteration; being cut off for
                # reading too slowly (1008, reason names resume_seq) is an error the caller must see.
                if self._conn is not None and self._conn.close_code in (1000, 1001):
                    return
                raise


class MessageStream(FrameStream[EnvelopeInfo]):
    """Live MessageBus envelopes (``async with client.message_stream(agent_id=...) as stream``).

    ``async for envelope in stream`` yields ``EnvelopeInfo``; ``envelope.seq`` is the cursor to
    pass as ``since_seq`` when reconnecting.
    """

    model = EnvelopeInfo
    name = "message"


class TelemetryStream(FrameStream[TelemetrySummaryInfo]):
    """Telemetry summaries pushed every ``interval`` seconds (``client.telemetry_stream()``)."""

    model = TelemetrySummaryInfo
    name = "telemetry"
