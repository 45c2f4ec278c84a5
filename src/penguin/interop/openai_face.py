"""The OpenAI-compatible face: ``POST /v1/chat/completions`` and ``GET /v1/models``.

Anything built for OpenAI's Chat Completions API (the ``openai`` SDK, LangChain, an IDE plugin)
can talk to a Penguin persona by pointing its base URL at ``http://<penguin>/v1``:

* ``model`` names the agent: ``"<agent_id>"`` (its main conversation) or
  ``"<agent_id>/<conversation_id>"``; ``GET /v1/models`` lists one model per agent.
* The request's **last user message** becomes one turn of that agent, through the same
  ``PenguinCore.chat`` every surface uses. Earlier messages in the request are ignored: the
  history is Penguin's own (the conversation remembers every turn), so a client that resends the
  whole transcript each time does not duplicate it. System messages are ignored too (the
  persona's system prompt applies). Sampling parameters (``temperature``...) are accepted and
  ignored: the agent's ``model_parameters`` apply.
* The reply has ``usage`` (prompt, completion and total tokens of the whole turn, tool loop
  included); ``stream: true`` answers with ``chat.completion.chunk`` events ending in
  ``data: [DONE]`` (a last chunk with ``usage`` when ``stream_options.include_usage`` is set).
* Errors use OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, with the status
  of Penguin's error table (``code`` is Penguin's error code, e.g. ``agent-not-found``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Literal

import orjson
import pydantic
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from penguin.api.errors import InternalError, MalformedJson, from_validation_errors, status_for
from penguin.api.state import Api, ApiState
from penguin.engine.results import ChatResult, TurnEvent
from penguin.errors import PenguinError, TurnCancelled, ValidationFailed
from penguin.naming import validate_agent_id

router = APIRouter(prefix="/v1", tags=["openai"])

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error",
          422: "invalid_request_error", 429: "rate_limit_error"}


class ContentPart(pydantic.BaseModel):
    """One part of a multi-part message; only ``text`` parts are read."""

    model_config = pydantic.ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(pydantic.BaseModel):
    """The fields Penguin reads; any other Chat Completions field is accepted and ignored."""

    model_config = pydantic.ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"model": "support", "messages": [{"role": "user", "content": "Hi!"}]}]},
    )
    model: str = pydantic.Field(max_length=200, description="`agent_id` or `agent_id/conversation_id`.")
    messages: list[ChatMessage] = pydantic.Field(min_length=1, max_length=10_000)
    stream: bool = False
    stream_options: StreamOptions | None = None


_COMPLETION_EXAMPLE = {
    "id": "chatcmpl-turn_01JF3ZQ8", "object": "chat.completion", "created": 1764867702, "model": "support",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help?"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
    "penguin": {"agent_id": "support", "conversation_id": "conv_01JF3ZQ8", "turn_id": "turn_01JF3ZQ8"},
}
_ERROR_EXAMPLE = {"error": {"message": "no conversation 'conv_x'", "type": "invalid_request_error",
                            "param": "model", "code": "conversation-not-found"}}


def openai_error(exc: PenguinError) -> JSONResponse:
    """``exc`` as OpenAI's error body, with the status of Penguin's error table."""
    status = status_for(exc)
    body = {"error": {"message": exc.detail, "type": _TYPES.get(status, "server_error"),
                      "param": exc.field, "code": exc.code}}
    return JSONResponse(body, status_code=status)


def parse_model(model: str) -> tuple[str, str | None]:
    """``(agent_id, conversation_id | None)`` from ``agent_id`` or ``agent_id/conversation_id``.

    Raises:
        InvalidAgentId: the agent part breaks the id rule.
        ValidationFailed: an empty conversation part.
    """
    agent, sep, conversation = model.partition("/")
    agent_id = validate_agent_id(agent, field="model")
    if sep and not conversation:
        raise ValidationFailed("model: give 'agent_id' or 'agent_id/conversation_id'", field="model")
    return agent_id, conversation or None


def last_user_text(messages: list[ChatMessage]) -> str:
    """The text of the last message, which must be the user's.

    Raises:
        ValidationFailed: the last message is not a user message with text.
    """
    last = messages[-1]
    if last.role != "user":
        raise ValidationFailed(
            f"messages: the last message must be the user's (got {last.role!r}); Penguin keeps the history, "
            "so send only the new user message", field="messages",
        )
    if isinstance(last.content, str):
        text = last.content
    else:
        text = "\n".join(p.text for p in last.content or [] if p.type == "text" and p.text)
    if not text.strip():
        raise ValidationFailed("messages: the last user message has no text", field="messages")
    return text


async def _read(request: Request) -> ChatCompletionRequest:
    raw = await request.body()
    try:
        decoded = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedJson(f"the body is not valid JSON: {exc}", field="body") from None
    try:
        return ChatCompletionRequest.model_validate(decoded)
    except pydantic.ValidationError as exc:
        raise from_validation_errors(exc.errors()) from None


@router.post(
    "/chat/completions",
    summary="OpenAI-compatible chat completion",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}"),
        "example": {"model": "support", "messages": [{"role": "user", "content": "Hi!"}]}}}}},
    responses={
        200: {"description": "A `chat.completion`, or with `stream: true` a `text/event-stream` of "
                             "`chat.completion.chunk` events ending with `data: [DONE]`.",
              "content": {"application/json": {"example": _COMPLETION_EXAMPLE},
                          "text/event-stream": {"schema": {"type": "string"}}}},
        400: {"description": "Bad request (OpenAI error shape)", "content": {"application/json": {
            "example": _ERROR_EXAMPLE}}},
        404: {"description": "Unknown conversation, or agent with auto-create off (OpenAI error shape)",
              "content": {"application/json": {"example": _ERROR_EXAMPLE}}},
        502: {"description": "The agent's model failed (OpenAI error shape)",
              "content": {"application/json": {"example": _ERROR_EXAMPLE}}},
    },
)
async def chat_completions(request: Request, api: Api) -> Response:
    """Run the last user message as one turn of the agent named by `model` (see docs/api.md)."""
    try:
        body = await _read(request)
        agent_id, conversation_id = parse_model(body.model)
        text = last_user_text(body.messages)
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return await _stream(api, body.model, text, agent_id, conversation_id, include_usage)
        result = await api.tracker.run(api.core.chat(text, agent_id=agent_id, conversation_id=conversation_id))
    except PenguinError as exc:
        return openai_error(exc)
    return Response(orjson.dumps(completion(result, body.model)), media_type="application/json")


def _usage(result: ChatResult) -> dict[str, int]:
    u = result.usage
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens}


def _finish_reason(result: ChatResult) -> str:
    return "length" if result.status == "max_iterations" else "stop"


def completion(result: ChatResult, model: str) -> dict[str, Any]:
    """The ``chat.completion`` object of one finished turn."""
    return {
        "id": f"chatcmpl-{result.turn_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                     "finish_reason": _finish_reason(result)}],
        "usage": _usage(result),
        "penguin": {"agent_id": result.agent_id, "conversation_id": result.conversation_id,
                    "turn_id": result.turn_id},
    }


async def _stream(api: ApiState, model: str, text: str, agent_id: str, conversation_id: str | None,
                  include_usage: bool) -> Response:
    """Start the turn; an error before its first event is a plain error response, not a stream."""
    queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()

    async def hook(event: TurnEvent) -> None:
        queue.put_nowait(event)

    async def turn() -> ChatResult:
        try:
            return await api.core.chat(text, agent_id=agent_id, conversation_id=conversation_id, stream=True,
                                       on_event=hook)
        finally:
            queue.put_nowait(None)

    task = api.tracker.start(turn(), name="penguin-openai-turn")
    first = await queue.get()
    if first is None:
        await asyncio.wait((task,))
        task.result()  # raises the turn's error, answered in OpenAI's shape by the route
        raise InternalError("the turn ended without events")
    return StreamingResponse(
        _chunks(model, first, queue, task, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _chunk(chunk_id: str, model: str, created: int, delta: Mapping[str, Any], finish: str | None) -> bytes:
    body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def _chunks(model: str, first: TurnEvent, queue: asyncio.Queue[TurnEvent | None],
                  task: asyncio.Task[ChatResult], include_usage: bool) -> AsyncIterator[bytes]:
    created = int(time.time())
    chunk_id = f"chatcmpl-{first.data.get('turn_id', '')}"
    yield _chunk(chunk_id, model, created, {"role": "assistant", "content": ""}, None)
    while (event := await queue.get()) is not None:
        if event.type == "delta":
            yield _chunk(chunk_id, model, created, {"content": str(event.data.get("text", ""))}, None)
    await asyncio.wait((task,))
    if task.cancelled() or task.exception() is not None:
        exc = None if task.cancelled() else task.exception()
        error = exc if isinstance(exc, PenguinError) else (
            TurnCancelled("the turn was cancelled") if exc is None else
            InternalError(f"the turn failed ({type(exc).__name__})"))
        body = orjson.loads(openai_error(error).body)
        yield b"data: " + orjson.dumps(body) + b"\n\n"
        yield b"data: [DONE]\n\n"
        return
    result = task.result()
    yield _chunk(chunk_id, model, created, {}, _finish_reason(result))
    if include_usage:
        body = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [], "usage": _usage(result)}
        yield b"data: " + orjson.dumps(body) + b"\n\n"
    yield b"data: [DONE]\n\n"


_MODEL_EXAMPLE = {"id": "support", "object": "model", "created": 1764867702, "owned_by": "penguin"}
_MODELS_EXAMPLE = {"object": "list", "data": [_MODEL_EXAMPLE]}


def _model_entry(spec: Any) -> dict[str, Any]:
    return {"id": spec.agent_id, "object": "model", "created": int(spec.created_at), "owned_by": "penguin"}


@router.get("/models", summary="OpenAI-compatible model list (one model per agent)",
            responses={200: {"content": {"application/json": {"example": _MODELS_EXAMPLE}}}})
async def list_models(api: Api) -> dict[str, Any]:
    """Every agent as a model id usable in `/v1/chat/completions`."""
    return {"object": "list", "data": [_model_entry(spec) for spec in api.core.list_agents()]}


@router.get("/models/{model}", summary="One agent as an OpenAI model",
            responses={200: {"content": {"application/json": {"example": _MODEL_EXAMPLE}}},
                       404: {"description": "No such agent (OpenAI error shape)",
                             "content": {"application/json": {"example": _ERROR_EXAMPLE}}}})
async def get_model(model: str, api: Api) -> Response:
    """The agent named `model`."""
    try:
        spec = api.core.get_agent(parse_model(model)[0])
    except PenguinError as exc:
        return openai_error(exc)
    return JSONResponse(_model_entry(spec))


__all__ = ["ChatCompletionRequest", "completion", "last_user_text", "openai_error", "parse_model", "router"]
