"""``PenguinClient``: the async Python client of the Penguin HTTP API (aiohttp + websockets).

It mirrors the REST surface one method per route, and sends and parses the same models the
server validates (``penguin.api.schemas``): ``ChatOptions`` and ``TaskOptions`` carry per-call
settings, responses come back as ``ChatResponse``, ``AgentInfo``, ``TaskInfo``, ... Errors are
raised as ``PenguinAPIError`` subclasses carrying the server's problem+json body (``NotFoundError``,
``ValidationError``, ``PayloadTooLargeError``, ...; the tree is in ``penguin.api.client_base``).

Example::

    async with PenguinClient() as client:
        reply = await client.chat("Hello", options=ChatOptions(agent_id="support"))
        print(reply)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterator
from types import TracebackType
from typing import Any

import orjson
from yarl import URL

from penguin.api.client_base import (
    API,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PenguinAPIError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
    error_for,
    problem_of,
    query,
    query_pairs,
    seg,
    transport_errors,
)
from penguin.api.client_orchestration import OrchestrationMethods
from penguin.api.client_sockets import ChatSocket, MessageStream, TelemetryStream
from penguin.api.schemas import (
    AgentInfo,
    CancelResult,
    ChatEvent,
    ChatOptions,
    ChatResponse,
    CheckpointInfo,
    ConversationInfo,
    HealthInfo,
    HistoryPage,
    MessageInfo,
    RollbackResult,
    TaskInfo,
    TaskOptions,
    VersionInfo,
)
from penguin.api.schemas_telemetry import TelemetrySummaryInfo
from penguin.http_session import HttpSession
from penguin.sse import body_lines, sse_events

_JSON_HEADERS = {"Content-Type": "application/json"}


class PenguinClient(OrchestrationMethods):
    """Async client of one Penguin server. Use as ``async with PenguinClient(...) as client``.

    Args:
        base_url: the server, e.g. ``http://localhost:8000`` (the ``penguin serve`` default).
        api_key: sent as ``Authorization: Bearer``; default: ``PENGUIN_API_KEY`` if set.
        timeout: seconds the server may stay silent: to connect, and between any two reads of an
            answer (a chat waits for the whole turn).
    """

    def __init__(
        self,
        base_url: str = "http://localhost:8000",
        api_key: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        key = api_key if api_key is not None else os.environ.get("PENGUIN_API_KEY")
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._timeout = timeout
        self._http = HttpSession(base_url=self.base_url, headers=self._headers, timeout=timeout)

    async def __aenter__(self) -> PenguinClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        # orjson both ways: the stdlib's json was a fifth of the client's CPU per chat.
        content = None if json is None else orjson.dumps(json)
        headers = None if json is None else _JSON_HEADERS
        http = self._http
        with transport_errors():
            async with http.session().request(
                method, self._url(path), data=content, headers=headers, params=query_pairs(params),
                proxy=http.proxy,
            ) as response:
                raw = await response.read()
        if response.status >= 400:
            raise error_for(response.status, problem_of(response.status, response.reason, raw))
        return orjson.loads(raw)

    # Chat ------------------------------------------------------------------------------------

    async def chat(self, text: str, options: ChatOptions | None = None) -> ChatResponse:
        """Send ``text`` and return the reply (``str(response)`` is its text).

        With ``options.streaming`` the answer is read as a stream and its final result returned.
        """
        options = options or ChatOptions()
        if options.streaming:
            async for event in self.stream_chat(text, options):
                if event.type == "final":
                    return event.result()
                if event.type == "error":
                    raise error_for(int((event.problem or {}).get("status", 500)), event.problem or {})
            raise ServerError("the stream ended without a final event")
        body = {**options.model_dump(exclude_none=True), "text": text}
        return await self._one(ChatResponse, "POST", "/chat", json=body)

    async def stream_chat(self, text: str, options: ChatOptions | None = None) -> AsyncGenerator[ChatEvent, None]:
        """Send ``text`` and yield the turn's events (server-sent events) as they happen."""
        options = options or ChatOptions()
        body = {**options.model_dump(exclude_none=True), "text": text, "streaming": True}
        http = self._http
        with transport_errors():
            async with http.session().post(
                self._url("/chat"), data=orjson.dumps(body), headers=_JSON_HEADERS, proxy=http.proxy
            ) as response:
                if response.status >= 400:
                    raw = await response.read()
                    raise error_for(response.status, problem_of(response.status, response.reason, raw))
                async for _event, data in sse_events(body_lines(response.content.iter_any())):
                    yield ChatEvent.model_validate(orjson.loads(data))

    def chat_stream_socket(self) -> ChatSocket:
        """A WebSocket carrying many concurrent chats (``async with client.chat_stream_socket() as ws``)."""
        return ChatSocket(self._ws_url("/chat/stream"), headers=self._headers, open_timeout=self._timeout)

    def message_stream(self, *, agent_id: str | None = None, sender: str | None = None,
                       recipient: str | None = None, channel: str | None = None, message_type: str | None = None,
                       since_seq: int | None = None) -> MessageStream:
        """Live MessageBus envelopes matching the filters (``async with client.message_stream(...) as s``)."""
        filters = {"agent_id": agent_id, "sender": sender, "recipient": recipient, "channel": channel,
                   "message_type": message_type, "since_seq": since_seq}
        return MessageStream(self._ws_url("/ws/messages"), headers=self._headers, open_timeout=self._timeout,
                             params=filters)

    def telemetry_stream(self, *, agent_id: str | None = None, interval: float = 1.0) -> TelemetryStream:
        """Telemetry snapshots every ``interval`` seconds (``async with client.telemetry_stream() as s``)."""
        return TelemetryStream(self._ws_url("/ws/telemetry"), headers=self._headers, open_timeout=self._timeout,
                               params={"agent_id": agent_id, "interval": interval})

    def _url(self, path: str) -> URL:
        try:
            return self._http.url(API + path)
        except ValueError as exc:
            raise APIConnectionError(f"{self.base_url!r} is not a usable base URL: {exc}") from exc

    def _ws_url(self, path: str) -> str:
        return self.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + API + path

    # Agents ----------------------------------------------------------------------------------

    async def create_agent(self, agent_id: str, *, exist_ok: bool = False, **fields: Any) -> AgentInfo:
        """Create an agent. Fields: system_prompt (or persona), roles, model, model_parameters,
        context_tokens, tool_policy, parent_id, paused, metadata. ``exist_ok`` updates an existing
        agent with the fields instead of raising ``ConflictError``."""
        return await self._one(AgentInfo, "POST", "/agents", json={"agent_id": agent_id, **fields},
                               params=query(exist_ok=exist_ok) if exist_ok else None)

    async def list_agents(self, role: str | None = None) -> list[AgentInfo]:
        return await self._many(AgentInfo, "/agents", params=query(role=role))

    async def get_agent(self, agent_id: str) -> AgentInfo:
        return await self._one(AgentInfo, "GET", f"/agents/{seg(agent_id)}")

    async def update_agent(self, agent_id: str, **changes: Any) -> AgentInfo:
        """Change only the given fields (``model=None`` resets to the server default)."""
        return await self._one(AgentInfo, "PATCH", f"/agents/{seg(agent_id)}", json=changes)

    async def delete_agent(self, agent_id: str) -> AgentInfo:
        return await self._one(AgentInfo, "DELETE", f"/agents/{seg(agent_id)}")

    async def pause_agent(self, agent_id: str) -> AgentInfo:
        return await self._one(AgentInfo, "POST", f"/agents/{seg(agent_id)}/pause")

    async def resume_agent(self, agent_id: str) -> AgentInfo:
        return await self._one(AgentInfo, "POST", f"/agents/{seg(agent_id)}/resume")

    async def cancel_agent(self, agent_id: str, conversation_id: str | None = None) -> CancelResult:
        return await self._one(
            CancelResult, "POST", f"/agents/{seg(agent_id)}/cancel", params=query(conversation_id=conversation_id)
        )

    # Conversations ---------------------------------------------------------------------------

    async def list_conversations(self, agent_id: str) -> list[ConversationInfo]:
        return await self._many(ConversationInfo, f"/agents/{seg(agent_id)}/conversations")

    async def get_conversation(self, conversation_id: str) -> ConversationInfo:
        return await self._one(ConversationInfo, "GET", f"/conversations/{seg(conversation_id)}")

    async def get_conversation_history(
        self,
        conversation_id: str,
        *,
        agent_id: str | None = None,
        channel: str | None = None,
        message_type: str | None = None,
        after_seq: int = 0,
        limit: int = 100,
    ) -> HistoryPage:
        """One page of the flat log; pass ``page.next_after_seq`` as ``after_seq`` for the next."""
        params = query(agent_id=agent_id, channel=channel, message_type=message_type, after_seq=after_seq, limit=limit)
        return await self._one(HistoryPage, "GET", f"/conversations/{seg(conversation_id)}/history", params=params)

    async def iter_conversation_history(
        self, conversation_id: str, *, page_size: int = 100, **filters: Any
    ) -> AsyncIterator[MessageInfo]:
        """Every message (matching ``filters``), following the cursor page by page."""
        after: int | None = 0
        while after is not None:
            page = await self.get_conversation_history(conversation_id, after_seq=after, limit=page_size, **filters)
            for message in page.messages:
                yield message
            after = page.next_after_seq

    async def create_checkpoint(self, conversation_id: str, name: str) -> CheckpointInfo:
        return await self._one(CheckpointInfo, "POST", f"/conversations/{seg(conversation_id)}/checkpoints",
                               json={"name": name})

    async def list_checkpoints(self, conversation_id: str) -> list[CheckpointInfo]:
        return await self._many(CheckpointInfo, f"/conversations/{seg(conversation_id)}/checkpoints")

    async def rollback(self, checkpoint_id: str) -> RollbackResult:
        return await self._one(RollbackResult, "POST", f"/checkpoints/{seg(checkpoint_id)}/rollback")

    async def branch(self, checkpoint_id: str, title: str = "") -> ConversationInfo:
        path = f"/checkpoints/{seg(checkpoint_id)}/branch"
        return await self._one(ConversationInfo, "POST", path, json={"title": title})

    # Tasks -----------------------------------------------------------------------------------

    async def run_task(self, prompt: str, options: TaskOptions | None = None) -> TaskInfo:
        """Start a task in the background; poll with ``get_task`` or ``wait_task``."""
        body = {**(options or TaskOptions()).model_dump(exclude_none=True), "prompt": prompt}
        return await self._one(TaskInfo, "POST", "/tasks", json=body)

    async def get_task(self, task_id: str) -> TaskInfo:
        return await self._one(TaskInfo, "GET", f"/tasks/{seg(task_id)}")

    async def list_tasks(self, agent_id: str | None = None) -> list[TaskInfo]:
        return await self._many(TaskInfo, "/tasks", params=query(agent_id=agent_id))

    async def cancel_task(self, task_id: str) -> TaskInfo:
        return await self._one(TaskInfo, "POST", f"/tasks/{seg(task_id)}/cancel")

    async def wait_task(self, task_id: str, *, timeout: float = 60.0, interval: float = 0.05) -> TaskInfo:
        """Poll until the task finished (or ``timeout`` seconds passed) and return it."""
        async with asyncio.timeout(timeout):
            while True:
                task = await self.get_task(task_id)
                if task.finished:
                    return task
                await asyncio.sleep(interval)

    # Server ----------------------------------------------------------------------------------

    async def health(self) -> HealthInfo:
        return await self._one(HealthInfo, "GET", "/health")

    async def version(self) -> VersionInfo:
        return await self._one(VersionInfo, "GET", "/version")


__all__ = [
    "APIConnectionError",
    "APITimeoutError",
    "AgentInfo",
    "AuthenticationError",
    "BadRequestError",
    "CancelResult",
    "ChatEvent",
    "ChatOptions",
    "ChatResponse",
    "ChatSocket",
    "CheckpointInfo",
    "ConflictError",
    "ConversationInfo",
    "HealthInfo",
    "HistoryPage",
    "MessageInfo",
    "MessageStream",
    "MethodNotAllowedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PenguinAPIError",
    "PenguinClient",
    "PermissionDeniedError",
    "RateLimitError",
    "RollbackResult",
    "ServerError",
    "TaskInfo",
    "TaskOptions",
    "TelemetryStream",
    "TelemetrySummaryInfo",
    "ValidationError",
    "VersionInfo",
    "error_for",
]
