"""The A2A face: agent cards and the JSON-RPC binding of A2A protocol 1.0 (what ``a2a-sdk`` 1.x speaks).

* ``GET /.well-known/agent-card.json``: the directory card, Penguin as one A2A agent whose skills
  are its agents; its endpoint ``/a2a`` talks to the agent named by the message's
  ``metadata.agent_id`` (default ``default``).
* ``GET /a2a/{agent_id}/.well-known/agent-card.json``: one card per agent, endpoint
  ``/a2a/{agent_id}`` (so ``create_client("http://host/a2a/support")`` finds it).
* ``POST /a2a[/{agent_id}]``: JSON-RPC 2.0 with ``SendMessage``, ``SendStreamingMessage`` (server-sent
  events, one JSON-RPC response each) and ``GetTask``.

Mapping: an A2A ``contextId`` is a Penguin conversation id (none: the agent's main conversation,
whose id the reply carries for the next message); each message is one turn, and its A2A task is
that turn, with the id ``<conversation_id>:<turn_id>`` so ``GetTask`` reads it back from the
conversation without any state of its own. A completed task carries the reply as its status
message and as the ``reply`` artifact; a failed turn is a ``TASK_STATE_FAILED`` task whose status
message is the error's detail. Errors of the call itself (bad params, unknown task) are JSON-RPC
errors with A2A's codes.

The wire types are written here as plain JSON (proto3 JSON names, enums as strings): the
``a2a-sdk`` server side would bring protobuf and Google API packages into every install, and the
three methods need little of it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

import penguin
from penguin.api.state import Api, ApiState
from penguin.engine.results import ChatResult, TurnEvent
from penguin.errors import NotFound, PenguinError, TaskNotFound, UserError
from penguin.naming import DEFAULT_AGENT_ID, validate_agent_id

router = APIRouter(tags=["a2a"])

PROTOCOL_VERSION = "1.0"
CARD_PATH = "/.well-known/agent-card.json"

# JSON-RPC 2.0 and A2A error codes.
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
TASK_NOT_FOUND = -32001


class RpcError(Exception):
    """A JSON-RPC error answer."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _rpc_error_of(exc: PenguinError) -> RpcError:
    if isinstance(exc, TaskNotFound):
        return RpcError(TASK_NOT_FOUND, exc.detail)
    if isinstance(exc, UserError):
        return RpcError(INVALID_PARAMS, f"{exc.detail} [{exc.code}]")
    return RpcError(INTERNAL_ERROR, f"{exc.detail} [{exc.code}]")


# Cards -------------------------------------------------------------------------------------------


def _card(api: ApiState, base: str, *, name: str, description: str, url: str,
          skills: list[dict[str, Any]]) -> dict[str, Any]:
    card: dict[str, Any] = {
        "name": name,
        "description": description,
        "supportedInterfaces": [{"url": url, "protocolBinding": "JSONRPC", "protocolVersion": PROTOCOL_VERSION}],
        "provider": {"organization": "Penguin", "url": base},
        "version": penguin.__version__,
        "documentationUrl": f"{base}/docs",
        "capabilities": {"streaming": True, "pushNotifications": False},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": skills,
    }
    if api.core.settings.api_key:
        card["securitySchemes"] = {"bearer": {"httpAuthSecurityScheme": {"scheme": "bearer"}}}
        card["securityRequirements"] = [{"schemes": {"bearer": {"list": []}}}]
    return card


def _skill(spec: Any) -> dict[str, Any]:
    prompt = (spec.system_prompt or "").strip()
    return {"id": spec.agent_id, "name": spec.agent_id,
            "description": prompt[:500] or f"Chat with the Penguin agent {spec.agent_id!r}.",
            "tags": list(spec.roles) or ["chat"]}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(CARD_PATH, summary="A2A directory card: Penguin, with one skill per agent")
async def directory_card(request: Request, api: Api) -> dict[str, Any]:
    """Messages to its endpoint (`/a2a`) go to `metadata.agent_id` (default: `default`)."""
    base = _base(request)
    return _card(api, base, name="Penguin", url=f"{base}/a2a",
                 description="A Penguin server hosting several agents; name one in metadata.agent_id.",
                 skills=[_skill(s) for s in api.core.list_agents()])


@router.get("/a2a/{agent_id}" + CARD_PATH, summary="A2A card of one agent")
async def agent_card(agent_id: str, request: Request, api: Api) -> dict[str, Any]:
    """The agent's card; unknown agents are 404 (cards are not auto-created)."""
    spec = api.core.get_agent(agent_id)
    base = _base(request)
    return _card(api, base, name=spec.agent_id, url=f"{base}/a2a/{spec.agent_id}",
                 description=_skill(spec)["description"], skills=[_skill(spec)])


# JSON-RPC ----------------------------------------------------------------------------------------


_RPC_REQUEST = {"jsonrpc": "2.0", "id": "1", "method": "SendMessage", "params": {"message": {
    "messageId": "9f1c", "role": "ROLE_USER", "contextId": "conv_01jf3zq8", "parts": [{"text": "Hello!"}],
    "metadata": {"agent_id": "support"}}}}
_RPC_RESULT = {"jsonrpc": "2.0", "id": "1", "result": {"task": {
    "id": "conv_01jf3zq8:turn_01jf3zq8", "contextId": "conv_01jf3zq8",
    "status": {"state": "TASK_STATE_COMPLETED", "timestamp": "2026-12-04T16:41:42.123Z", "message": {
        "messageId": "msg-1", "role": "ROLE_AGENT", "parts": [{"text": "Hi! How can I help?"}]}},
    "artifacts": [{"artifactId": "reply", "name": "reply", "parts": [{"text": "Hi! How can I help?"}]}]}}}
_RPC_DOC: dict[str, Any] = {
    "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "object", "required": ["jsonrpc", "method", "id"]}, "example": _RPC_REQUEST}}}},
    "responses": {200: {"description": "A JSON-RPC response; `SendStreamingMessage` answers with a "
                                       "`text/event-stream` of JSON-RPC responses (see docs/api.md).",
                        "content": {"application/json": {"example": _RPC_RESULT},
                                    "text/event-stream": {"schema": {"type": "string"}}}}},
}


@router.post("/a2a", summary="A2A JSON-RPC endpoint of the directory (agent from metadata.agent_id)", **_RPC_DOC)
async def rpc_directory(request: Request, api: Api) -> Response:
    return await _rpc(request, api, None)


@router.post("/a2a/{agent_id}", summary="A2A JSON-RPC endpoint of one agent", **_RPC_DOC)
async def rpc_agent(agent_id: str, request: Request, api: Api) -> Response:
    """`SendMessage`, `SendStreamingMessage` and `GetTask` of A2A 1.0 (see docs/api.md)."""
    return await _rpc(request, api, agent_id)


def _answer(rpc_id: Any, result: Any = None, error: RpcError | None = None) -> JSONResponse:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id}
    if error is not None:
        body["error"] = {"code": error.code, "message": error.message}
    else:
        body["result"] = result
    return JSONResponse(body)


async def _rpc(request: Request, api: ApiState, agent_id: str | None) -> Response:
    try:
        payload = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        return _answer(None, error=RpcError(PARSE_ERROR, f"the body is not valid JSON: {exc}"))
    rpc_id = payload.get("id") if isinstance(payload, dict) else None
    try:
        if not isinstance(payload, dict) or payload.get("jsonrpc") != "2.0" or not isinstance(
                payload.get("method"), str):
            raise RpcError(INVALID_REQUEST, "not a JSON-RPC 2.0 request (jsonrpc, method, params, id)")
        params = payload.get("params") or {}
        if not isinstance(params, dict):
            raise RpcError(INVALID_PARAMS, "params must be an object")
        method = payload["method"]
        if method == "SendMessage":
            return _answer(rpc_id, {"task": await _send(api, agent_id, params)})
        if method == "SendStreamingMessage":
            return await _stream(api, agent_id, params, rpc_id)
        if method == "GetTask":
            return _answer(rpc_id, await _get_task(api, params))
        raise RpcError(METHOD_NOT_FOUND, f"method {method!r} is not supported; this agent serves SendMessage, "
                                         "SendStreamingMessage and GetTask")
    except RpcError as exc:
        return _answer(rpc_id, error=exc)
    except PenguinError as exc:
        return _answer(rpc_id, error=_rpc_error_of(exc))


def _text_of(message: Mapping[str, Any]) -> str:
    parts = message.get("parts")
    if not isinstance(parts, list) or not parts:
        raise RpcError(INVALID_PARAMS, "message.parts must be a non-empty list")
    text = "\n".join(str(p["text"]) for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    if not text.strip():
        raise RpcError(INVALID_PARAMS, "message has no text part (Penguin agents read text)")
    return text


def _turn_request(agent_id: str | None, params: Mapping[str, Any]) -> tuple[str, str | None, str, dict[str, Any]]:
    """``(agent_id, conversation_id, text, message)`` of a SendMessage request."""
    message = params.get("message")
    if not isinstance(message, dict):
        raise RpcError(INVALID_PARAMS, "params.message is required")
    if agent_id is None:
        metadata = message.get("metadata") or params.get("metadata") or {}
        agent_id = str(metadata.get("agent_id", DEFAULT_AGENT_ID)) if isinstance(metadata, dict) else DEFAULT_AGENT_ID
    context_id = message.get("contextId")
    if context_id is not None and not isinstance(context_id, str):
        raise RpcError(INVALID_PARAMS, "message.contextId must be a string")
    return validate_agent_id(agent_id), context_id or None, _text_of(message), message


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _agent_message(text: str, task_id: str, context_id: str) -> dict[str, Any]:
    return {"messageId": f"msg-{uuid.uuid4().hex}", "contextId": context_id, "taskId": task_id,
            "role": "ROLE_AGENT", "parts": [{"text": text}]}


def _task(result: ChatResult, user: Mapping[str, Any]) -> dict[str, Any]:
    task_id = f"{result.conversation_id}:{result.turn_id}"
    reply = _agent_message(result.text, task_id, result.conversation_id)
    return {
        "id": task_id,
        "contextId": result.conversation_id,
        "status": {"state": "TASK_STATE_COMPLETED", "message": reply, "timestamp": _now()},
        "artifacts": [{"artifactId": "reply", "name": "reply", "parts": [{"text": result.text}]}],
        "history": [{**user, "taskId": task_id, "contextId": result.conversation_id}, reply],
        "metadata": {"agent_id": result.agent_id, "turn_id": result.turn_id,
                     "usage": result.usage.to_dict()},
    }


async def _send(api: ApiState, agent_id: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    agent, conversation_id, text, message = _turn_request(agent_id, params)
    result = await api.tracker.run(api.core.chat(text, agent_id=agent, conversation_id=conversation_id))
    return _task(result, message)


async def _get_task(api: ApiState, params: Mapping[str, Any]) -> dict[str, Any]:
    task_id = params.get("id")
    if not isinstance(task_id, str):
        raise RpcError(INVALID_PARAMS, "params.id (the task id) is required")
    conversation_id, _, turn_id = task_id.partition(":")
    try:
        messages = await api.core.history(conversation_id=conversation_id) if turn_id else []
    except NotFound:
        messages = []
    turn = [m for m in messages if m.turn_id == turn_id]
    if not turn:
        raise RpcError(TASK_NOT_FOUND, f"no task {task_id!r}")
    history = [{"messageId": m.id, "contextId": conversation_id, "taskId": task_id,
                "role": "ROLE_USER" if m.role == "user" else "ROLE_AGENT", "parts": [{"text": m.content}]}
               for m in turn if m.role in ("user", "assistant") and m.content]
    failed = next((m for m in turn if m.message_type == "status"), None)
    state = "TASK_STATE_COMPLETED"
    if failed is not None:
        state = "TASK_STATE_CANCELED" if (failed.metadata or {}).get("status") == "cancelled" else "TASK_STATE_FAILED"
    last = next((h for h in reversed(history) if h["role"] == "ROLE_AGENT"), None)
    task: dict[str, Any] = {"id": task_id, "contextId": conversation_id,
                            "status": {"state": state, "timestamp": _now()}, "history": history}
    if state == "TASK_STATE_COMPLETED" and last is not None:
        task["status"]["message"] = last
        task["artifacts"] = [{"artifactId": "reply", "name": "reply", "parts": last["parts"]}]
    elif failed is not None:
        task["status"]["message"] = _agent_message(failed.content, task_id, conversation_id)
    return task


# Streaming ---------------------------------------------------------------------------------------


async def _stream(api: ApiState, agent_id: str | None, params: Mapping[str, Any], rpc_id: Any) -> Response:
    agent, conversation_id, text, message = _turn_request(agent_id, params)
    queue: asyncio.Queue[TurnEvent | None] = asyncio.Queue()

    async def hook(event: TurnEvent) -> None:
        queue.put_nowait(event)

    async def turn() -> ChatResult:
        try:
            return await api.core.chat(text, agent_id=agent, conversation_id=conversation_id, stream=True,
                                       on_event=hook)
        finally:
            queue.put_nowait(None)

    task = api.tracker.start(turn(), name="penguin-a2a-turn")
    first = await queue.get()
    if first is None:  # failed before it started (bad agent or conversation): a JSON-RPC error
        await asyncio.wait((task,))
        task.result()
        raise RpcError(INTERNAL_ERROR, "the turn ended without any event")
    return StreamingResponse(_events(rpc_id, first, queue, task, message), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _sse(rpc_id: Any, result: Mapping[str, Any]) -> bytes:
    return b"data: " + orjson.dumps({"jsonrpc": "2.0", "id": rpc_id, "result": result}) + b"\n\n"


async def _events(rpc_id: Any, first: TurnEvent, queue: asyncio.Queue[TurnEvent | None],
                  turn: asyncio.Task[ChatResult], message: Mapping[str, Any]) -> AsyncIterator[bytes]:
    context_id = first.conversation_id
    task_id = f"{context_id}:{first.data.get('turn_id', '')}"
    user = {**message, "taskId": task_id, "contextId": context_id}
    yield _sse(rpc_id, {"task": {"id": task_id, "contextId": context_id, "history": [user],
                                 "status": {"state": "TASK_STATE_WORKING", "timestamp": _now()}}})
    chunks = 0
    while (event := await queue.get()) is not None:
        if event.type == "delta":
            chunks += 1
            yield _sse(rpc_id, {"artifactUpdate": {
                "taskId": task_id, "contextId": context_id, "append": chunks > 1, "lastChunk": False,
                "artifact": {"artifactId": "reply", "name": "reply", "parts": [{"text": event.data.get("text", "")}]},
            }})
    await asyncio.wait((turn,))
    if turn.cancelled() or turn.exception() is not None:
        exc = None if turn.cancelled() else turn.exception()
        detail = exc.detail if isinstance(exc, PenguinError) else "the turn was cancelled" if exc is None \
            else f"the turn failed ({type(exc).__name__})"
        state = "TASK_STATE_CANCELED" if exc is None else "TASK_STATE_FAILED"
        yield _sse(rpc_id, {"statusUpdate": {"taskId": task_id, "contextId": context_id, "status": {
            "state": state, "message": _agent_message(detail, task_id, context_id), "timestamp": _now()}}})
        return
    result = turn.result()
    yield _sse(rpc_id, {"statusUpdate": {"taskId": task_id, "contextId": context_id, "status": {
        "state": "TASK_STATE_COMPLETED", "message": _agent_message(result.text, task_id, context_id),
        "timestamp": _now()}, "metadata": {"usage": result.usage.to_dict()}}})


__all__ = ["CARD_PATH", "PROTOCOL_VERSION", "router"]
