"""``POST /api/v1/chat``: one turn, answered as JSON or streamed as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.responses import Response, StreamingResponse

from penguin.api.errors import InternalError, error_event
from penguin.api.routes._docs import problems
from penguin.api.schemas import ChatRequest, ChatResponse
from penguin.api.state import Api, ApiState
from penguin.engine.results import ChatResult, TurnEvent
from penguin.errors import PenguinError, TurnCancelled

router = APIRouter(tags=["chat"])


@router.post(
    "/chat",
    response_model=ChatResponse,
    summary="Send a message to an agent",
    responses={
        200: {
            "description": "The reply (JSON), or with `streaming: true` a `text/event-stream` of "
            "`start`, `delta`, `tool_call`, `tool_result` and a last `final` or `error` event.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problems(404, 409, 413, 422, 502),
    },
)
async def chat(body: ChatRequest, api: Api) -> Any:
    """Run one turn for `agent_id` (created on first use unless auto-create is off)."""
    options = body.core_options()
    if body.streaming:
        return await _stream(api, body.text, options)
    result = await api.tracker.run(api.core.chat(body.text, **options))
    # Serialised here with orjson, not validated again through ``ChatResponse`` (the schema the
    # route documents): ``ChatResult.to_dict`` has exactly its fields, and this is the hot path.
    return Response(orjson.dumps(result.to_dict(), default=str), media_type="application/json")


async def _stream(api: ApiState, text: str, options: Mapping[str, Any]) -> Response:
    """Start the turn and answer with its events; errors before the first event are plain problems.

    Waiting for the first event keeps bad input (unknown agent, foreign conversation, ...) a 4xx
    response instead of a 200 stream holding one error event.
    """
    queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()

    async def hook(event: TurnEvent) -> None:
        queue.put_nowait(event)

    async def turn() -> ChatResult:
        try:
            return await api.core.chat(text, stream=True, on_event=hook, **options)
        finally:
            queue.put_nowait(None)

    task = api.tracker.start(turn(), name="penguin-sse-turn")
    first = await queue.get()
    if first is None:
        await asyncio.wait((task,))
        task.result()  # raises the turn's error: the exception handlers answer with a problem
        return Response(status_code=204)
    return StreamingResponse(
        _events(first, queue, task),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    first: TurnEvent, queue: asyncio.Queue[TurnEvent | None], task: asyncio.Task[ChatResult]
) -> AsyncIterator[bytes]:
    seq = 0
    event: TurnEvent | None = first
    while event is not None:
        seq += 1
        yield _sse(event.type, {**event.to_dict(), "seq": seq})
        event = await queue.get()
    await asyncio.wait((task,))
    error: PenguinError
    if task.cancelled():
        error = TurnCancelled(f"the turn of agent {first.agent_id!r} was cancelled")
    else:
        exc = task.exception()
        if exc is None:
            return
        error = exc if isinstance(exc, PenguinError) else InternalError(f"the turn failed ({type(exc).__name__})")
    yield _sse("error", error_event(error, first.agent_id, first.conversation_id, seq=seq + 1))


def _sse(event: str, data: Mapping[str, Any]) -> bytes:
    head = f"event: {event}\nid: {data.get('seq', '')}\ndata: ".encode()
    return head + orjson.dumps(data, default=str) + b"\n\n"
