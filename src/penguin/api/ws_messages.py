"""``/api/v1/ws/messages``: a live stream of MessageBus envelopes, filtered, resumable.

Query parameters pick what to see: ``agent_id`` (sent by, to, or on the agent's channel),
``sender``, ``recipient``, ``channel``, ``message_type``, and ``since_seq`` to replay stored
envelopes after that bus sequence number before the live ones (no gap, no duplicate). Each frame
is ``{"type": "envelope", ...envelope fields...}``; its ``seq`` is the bus sequence number, the
cursor to resume from.

The subscription is bounded (``ws_send_queue`` envelopes) with the bus's ``disconnect`` policy: a
client that cannot keep up is closed with code 1008 and a reason naming ``resume_seq``, and counted
in ``/api/v1/health``; reconnecting with ``since_seq=<resume_seq>`` continues exactly where it
stopped. Publishers are never slowed down by a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket
from pydantic import Field, ValidationError

from penguin.api.errors import error_event, from_validation_errors
from penguin.api.schemas import MAX_SEQ, AgentId, RequestModel
from penguin.api.schemas_orchestration import Address, Channel, MessageType
from penguin.api.state import ApiState, state_of
from penguin.bus.errors import SubscriberDisconnected
from penguin.errors import PenguinError

router = APIRouter(tags=["messages"])

#: Close code for a subscriber that fell behind (RFC 6455 "policy violation").
CLOSE_SLOW_CONSUMER = 1008


class StreamFilter(RequestModel):
    """The query parameters of ``/api/v1/ws/messages``."""

    model_config = RequestModel.model_config | {"strict": False}  # query values arrive as strings

    agent_id: AgentId | None = None
    sender: Address | None = None
    recipient: Address | None = None
    channel: Channel | None = None
    message_type: MessageType | None = None
    since_seq: int | None = Field(default=None, ge=0, le=MAX_SEQ)


@router.websocket("/ws/messages")
async def messages_stream(websocket: WebSocket) -> None:
    api = state_of(websocket)
    await websocket.accept()
    params = {k: v for k, v in websocket.query_params.items() if k != "token"}
    try:
        flt = StreamFilter.model_validate(params)
    except ValidationError as exc:
        error = from_validation_errors(exc.errors())
        await websocket.send_text(orjson.dumps(error_event(error, None, None)).decode())
        await websocket.close(CLOSE_SLOW_CONSUMER, error.detail[:120])
        return
    api.websockets.connections += 1
    api.websockets.accepted_total += 1
    try:
        await _stream(websocket, api, flt)
    finally:
        api.websockets.connections -= 1


async def _stream(websocket: WebSocket, api: ApiState, flt: StreamFilter) -> None:
    try:
        subscription = api.core.subscribe(
            agent_id=flt.agent_id, sender=flt.sender, recipient=flt.recipient, channel=flt.channel,
            message_type=flt.message_type, since_seq=flt.since_seq, max_queue=api.ws_send_queue,
            policy="disconnect",
        )
    except PenguinError as error:
        await websocket.send_text(orjson.dumps(error_event(error, flt.agent_id, None)).decode())
        await websocket.close(CLOSE_SLOW_CONSUMER, error.detail[:120])
        return

    async def forward() -> None:
        async for envelope in subscription:
            frame: dict[str, Any] = {"type": "envelope", **envelope.to_dict()}
            await websocket.send_text(orjson.dumps(frame, default=str).decode())

    async def until_disconnect() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # this stream takes no client frames

    async with subscription:
        sender = asyncio.create_task(forward(), name="penguin-ws-messages-send")
        receiver = asyncio.create_task(until_disconnect(), name="penguin-ws-messages-receive")
        try:
            await asyncio.wait((sender, receiver), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            await asyncio.wait((sender, receiver))
    if sender.cancelled():
        return
    exc = sender.exception()
    if isinstance(exc, SubscriberDisconnected):
        api.websockets.overflow_disconnects += 1
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                websocket.close(CLOSE_SLOW_CONSUMER, f"too slow; resume with since_seq={exc.resume_seq}"),
                timeout=1.0,
            )
    elif exc is None:  # the bus stopped (server shutdown)
        with contextlib.suppress(Exception):
            await websocket.close(1001, "the server is shutting down")
