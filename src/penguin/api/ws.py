"""``/api/v1/chat/stream``: many concurrent chats, for any agents, multiplexed on one WebSocket.

Client frames (JSON text)::

    {"type": "chat", "request_id": "r1", "agent_id": "support", "text": "...", "conversation_id"?,
     "context"?, "model"?, "max_iterations"?}
    {"type": "cancel", "request_id": "r1"}

Server events are the turn events of each chat (``accepted``, ``start``, ``delta``, ``tool_call``,
``tool_result``, then ``final`` or ``error``), each tagged with ``agent_id``, ``conversation_id``,
``request_id`` and a per-connection ``seq`` that is contiguous from 1. A frame that cannot be
used gets an ``error`` event holding a problem body; the socket stays open.

Chats run as independent turns: different agents concurrently, one agent's conversation in
arrival order. Events go through a bounded per-connection queue drained by one sender task, so a
client that reads slowly only ever delays itself; when its queue overflows it is disconnected
with close code 1008 and counted in ``/api/v1/health``. Turns already accepted keep running to
completion after a disconnect (their messages are in the conversation's history).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from pydantic import TypeAdapter, ValidationError

from penguin.api.errors import InternalError, MalformedJson, error_event, from_validation_errors
from penguin.api.schemas import CancelFrame, ChatFrame, ClientFrame
from penguin.api.state import ApiState, state_of
from penguin.engine.results import TurnEvent
from penguin.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    PenguinError,
    QuotaExceeded,
    TurnCancelled,
    ValidationFailed,
)
from penguin.naming import DEFAULT_AGENT_ID

log = logging.getLogger("penguin.api")
router = APIRouter(tags=["chat"])

#: Close code sent to a client whose send queue overflowed (RFC 6455 "policy violation").
CLOSE_SLOW_CONSUMER = 1008
_FRAMES: TypeAdapter[ChatFrame | CancelFrame] = TypeAdapter(ClientFrame)


class ConnectionState(enum.Enum):
    OPEN = "open"
    OVERFLOWED = "overflowed"
    CLOSED = "closed"


class ChatConnection:
    """One accepted ``/chat/stream`` socket: its send queue, sequence counter and in-flight chats."""

    def __init__(self, websocket: WebSocket, api: ApiState) -> None:
        self._ws = websocket
        self._api = api
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=api.ws_send_queue)
        self._seq = 0
        self._chats: dict[str, asyncio.Task[None]] = {}
        self._overflow = asyncio.Event()
        self.state = ConnectionState.OPEN

    def emit(self, event: dict[str, Any]) -> None:
        """Queue ``event`` for sending; never blocks (a full queue disconnects this client)."""
        if self.state is not ConnectionState.OPEN:
            return
        if self._queue.full():
            self.state = ConnectionState.OVERFLOWED
            self._api.websockets.overflow_disconnects += 1
            self._overflow.set()
            return
        self._seq += 1
        event["seq"] = self._seq
        self._queue.put_nowait(event)

    async def serve(self) -> None:
        sender = asyncio.create_task(self._send_loop(), name="penguin-ws-send")
        receiver = asyncio.create_task(self._receive_loop(), name="penguin-ws-receive")
        overflow = asyncio.create_task(self._overflow.wait(), name="penguin-ws-overflow")
        try:
            await asyncio.wait((sender, receiver, overflow), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver, overflow):
                task.cancel()
            await asyncio.wait((sender, receiver, overflow))
            overflowed = self.state is ConnectionState.OVERFLOWED
            self.state = ConnectionState.CLOSED
            if overflowed:
                # The transport may be stuck behind the slow reader: do not wait long for the close.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(
                        self._ws.close(CLOSE_SLOW_CONSUMER, "send queue overflow: the client reads too slowly"),
                        timeout=1.0,
                    )
            for task in (sender, receiver):
                if not task.cancelled() and task.exception() is not None:
                    log.debug("websocket %s ended with %r", task.get_name(), task.exception())

    async def _send_loop(self) -> None:
        while True:
            event = await self._queue.get()
            await self._ws.send_text(orjson.dumps(event, default=str).decode())

    async def _receive_loop(self) -> None:
        while True:
            message = await self._ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.emit(error_event(ValidationFailed("send JSON text frames, not binary", field="frame"),
                                      None, None, request_id=None))
                continue
            limit = self._api.core.settings.max_body_bytes
            if len(text) > limit:
                self.emit(error_event(PayloadTooLarge(f"the frame is over the limit of {limit} characters",
                                                      field="frame", limit=limit), None, None, request_id=None))
                continue
            self._handle(text)

    def _handle(self, text: str) -> None:
        try:
            raw = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self.emit(error_event(MalformedJson(f"the frame is not valid JSON: {exc}", field="frame"),
                                  None, None, request_id=None))
            return
        request_id = raw.get("request_id") if isinstance(raw, dict) else None
        request_id = request_id if isinstance(request_id, str) else None
        try:
            frame = _FRAMES.validate_python(raw)
        except ValidationError as exc:
            agent_id = raw.get("agent_id") if isinstance(raw, dict) else None
            self.emit(error_event(from_validation_errors(exc.errors()),
                                  agent_id if isinstance(agent_id, str) else None, None, request_id=request_id))
            return
        if isinstance(frame, CancelFrame):
            self._cancel(frame)
        else:
            self._start(frame)

    def _start(self, frame: ChatFrame) -> None:
        agent_id = frame.agent_id or DEFAULT_AGENT_ID
        error: PenguinError | None = None
        if frame.request_id in self._chats:
            error = Conflict(f"request_id {frame.request_id!r} is already in flight on this connection",
                             field="request_id")
        elif len(self._chats) >= self._api.ws_max_inflight:
            error = QuotaExceeded(
                f"at most {self._api.ws_max_inflight} chats may be in flight per connection; wait for one to end"
            )
        else:
            try:
                task = self._api.tracker.start(self._run_chat(frame), name=f"penguin-ws-{frame.request_id}")
            except PenguinError as exc:
                error = exc
            else:
                self._chats[frame.request_id] = task
                task.add_done_callback(functools.partial(self._forget, frame.request_id))
                self.emit({"type": "accepted", "agent_id": agent_id, "conversation_id": frame.conversation_id,
                           "request_id": frame.request_id})
                return
        self.emit(error_event(error, agent_id, frame.conversation_id, request_id=frame.request_id))

    def _forget(self, request_id: str, _task: asyncio.Task[None]) -> None:
        self._chats.pop(request_id, None)

    def _cancel(self, frame: CancelFrame) -> None:
        task = self._chats.get(frame.request_id)
        if task is None:
            self.emit(error_event(NotFound(f"no chat {frame.request_id!r} in flight on this connection",
                                           field="request_id"), None, None, request_id=frame.request_id))
            return
        task.cancel()

    async def _run_chat(self, frame: ChatFrame) -> None:
        request_id = frame.request_id
        agent_id = frame.agent_id or DEFAULT_AGENT_ID
        conversation_id = frame.conversation_id

        async def hook(event: TurnEvent) -> None:
            nonlocal conversation_id
            conversation_id = event.conversation_id
            self.emit({**event.to_dict(), "request_id": request_id})

        error: PenguinError
        try:
            await self._api.core.chat(frame.text, stream=True, on_event=hook, **frame.core_options())
            return
        except asyncio.CancelledError:
            # A cancel frame (or shutdown after the grace period): the engine recorded the cancelled turn.
            error = TurnCancelled(f"chat {request_id!r} was cancelled", request_id=request_id)
        except PenguinError as exc:
            error = exc
        except Exception as exc:  # a bug: report it on the socket and in the log, never drop it
            log.exception("websocket chat %s failed", request_id)
            error = InternalError(f"the chat failed ({type(exc).__name__}); it was logged on the server")
        self.emit(error_event(error, agent_id, conversation_id, request_id=request_id))


@router.websocket("/chat/stream")
async def chat_stream(websocket: WebSocket) -> None:
    api = state_of(websocket)
    await websocket.accept()
    api.websockets.connections += 1
    api.websockets.accepted_total += 1
    try:
        await ChatConnection(websocket, api).serve()
    finally:
        api.websockets.connections -= 1
