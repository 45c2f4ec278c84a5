"""The request and response models of the HTTP API, shared by the server and ``PenguinClient``.

These are the only pydantic models on the request path: routes validate a body into one of them,
call a ``PenguinCore`` method, and return that method's ``to_dict()`` through a response model.
``PenguinClient`` sends the same request models and parses the same response models, so a field
added here exists on the server, in the OpenAPI document and in the client at once.

Request models are strict and forbid unknown fields (a typo is a 422 that names the field, not a
silently ignored option). Response models allow extra fields, so an older client keeps working
against a newer server.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from penguin.api.openapi import TOOL_POLICY_SCHEMA
from penguin.errors import InvalidAgentId
from penguin.naming import AGENT_ID_RULE, validate_agent_id

#: Highest ``seq``/``after_seq`` accepted: the column is a 32-bit integer on PostgreSQL.
MAX_SEQ = 2_147_483_647
MAX_TEXT_CHARS = 1_000_000


def _check_agent_id(value: str) -> str:
    try:
        return validate_agent_id(value)
    except InvalidAgentId as exc:
        # A custom error type lets the API edge report it as ``invalid-agent-id`` with the rule.
        raise PydanticCustomError("invalid_agent_id", "{detail}", {"detail": exc.detail}) from None


def _check_utf8(value: str) -> str:
    # JSON allows lone surrogates (``"\ud800"``); they cannot be stored, so refuse them here.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("invalid_text", "text contains an unpaired surrogate (invalid UTF-8)") from None
    return value


def _check_json(value: dict[str, Any]) -> dict[str, Any]:
    # Values land in JSON columns encoded by orjson: 64-bit integers and UTF-8 strings at most.
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise PydanticCustomError(
            "invalid_json_value", "object cannot be stored as JSON: {reason}", {"reason": str(exc)}
        ) from None
    return value


AgentId = Annotated[
    str,
    AfterValidator(_check_agent_id),
    WithJsonSchema({"type": "string", "pattern": AGENT_ID_RULE, "minLength": 1, "maxLength": 64}),
]
"""An agent id (or role name): 1-64 characters of ``A-Z a-z 0-9 _ -``."""

Text = Annotated[str, AfterValidator(_check_utf8)]
"""A string that is valid UTF-8 (no unpaired surrogates)."""

JsonObject = Annotated[dict[str, Any], AfterValidator(_check_json)]
"""A JSON object that can be stored (integers within 64 bits, valid UTF-8)."""

ToolPolicyObject = Annotated[JsonObject, WithJsonSchema(TOOL_POLICY_SCHEMA)]
"""A ``tool_policy`` object, documented by the ``ToolPolicy`` schema and validated by the core."""

ModelString = Annotated[Text, Field(min_length=1, max_length=240, examples=["scripted:echo"])]
"""``provider:model``; the core checks the provider (a 422 names the known ones)."""

ConversationId = Annotated[Text, Field(min_length=1, max_length=64)]


class RequestModel(BaseModel):
    """Base of request bodies: strict types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ResponseModel(BaseModel):
    """Base of responses: extra fields allowed, so older clients keep working."""

    model_config = ConfigDict(extra="allow")


# Requests --------------------------------------------------------------------------------------


class _ChatFields(RequestModel):
    agent_id: AgentId | None = Field(
        default=None, description="The persona to talk to; omitted means the `default` agent."
    )
    conversation_id: ConversationId | None = Field(
        default=None, description="One of the agent's conversations; omitted means its main one."
    )
    context: JsonObject | None = Field(default=None, description="Extra JSON shown to the model with the message.")
    model: ModelString | None = Field(default=None, description="Model for this call only (`provider:model`).")
    max_iterations: int | None = Field(default=None, ge=1, le=1000, description="Model calls this turn at most.")

    def core_options(self) -> dict[str, Any]:
        """The keyword arguments of ``PenguinCore.chat`` these options set."""
        return {
            "agent_id": self.agent_id,
            "conversation_id": self.conversation_id,
            "context": self.context,
            "model": self.model,
            "max_iterations": self.max_iterations,
        }


class ChatOptions(_ChatFields):
    """Per-call chat settings (everything of ``POST /api/v1/chat`` except the text)."""

    streaming: bool = Field(default=False, description="Answer as `text/event-stream` (SSE) events.")


class ChatRequest(ChatOptions):
    """``POST /api/v1/chat``."""

    text: Text = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="The message.")


class TaskOptions(RequestModel):
    """Per-call task settings (everything of ``POST /api/v1/tasks`` except the prompt)."""

    agent_id: AgentId | None = Field(default=None, description="The agent that runs the task.")
    agent_role: AgentId | None = Field(default=None, description="Pick the agent by role instead of by id.")
    max_iterations: int | None = Field(default=None, ge=1, le=1000, description="Turns at most (default 10).")
    context: JsonObject | None = None
    model: ModelString | None = None

    def core_options(self) -> dict[str, Any]:
        """The keyword arguments of ``PenguinCore.run_task`` these options set."""
        out: dict[str, Any] = {
            "agent_id": self.agent_id,
            "agent_role": self.agent_role,
            "context": self.context,
            "model": self.model,
        }
        if self.max_iterations is not None:
            out["max_iterations"] = self.max_iterations
        return out


class TaskRequest(TaskOptions):
    """``POST /api/v1/tasks``."""

    prompt: Text = Field(min_length=1, max_length=MAX_TEXT_CHARS)


def _not_null(schema: dict[str, Any]) -> None:
    """Document a field as non-nullable: ``None`` in Python only means "not given"."""
    options = schema.pop("anyOf", None)
    if options is not None:
        kept = [o for o in options if o.get("type") != "null"]
        schema.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
    schema.pop("default", None)


class AgentUpdate(RequestModel):
    """``PATCH /api/v1/agents/{agent_id}``: only the fields present change (null resets nullable ones).

    Fields that cannot be null are documented so; an explicit null reaches the core, which
    answers 422 naming the field.
    """

    system_prompt: Text | None = Field(
        default=None,
        max_length=100_000,
        validation_alias=AliasChoices("system_prompt", "persona"),
        description="The persona (system prompt). `persona` is accepted as an alias.",
        json_schema_extra=_not_null,
    )
    roles: list[AgentId] | None = Field(default=None, max_length=64, json_schema_extra=_not_null)
    model: ModelString | None = Field(default=None, description="`provider:model`; null = the server default.")
    model_parameters: JsonObject | None = Field(
        default=None,
        description="Provider parameters sent with every call (temperature, ...).",
        json_schema_extra=_not_null,
    )
    context_tokens: int | None = Field(default=None, ge=256, le=10_000_000)
    tool_policy: ToolPolicyObject | None = Field(
        default=None,
        description="Tool allow/deny globs, rate limits, quotas, approvals (see ToolPolicy); null = defaults.",
    )
    parent_id: AgentId | None = None
    paused: bool | None = Field(default=None, json_schema_extra=_not_null)
    metadata: JsonObject | None = Field(default=None, json_schema_extra=_not_null)

    def changes(self) -> dict[str, Any]:
        """The fields the caller set, by field name."""
        return self.model_dump(exclude_unset=True)


class AgentCreate(AgentUpdate):
    """``POST /api/v1/agents``."""

    agent_id: AgentId

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"agent_id"})


class CheckpointCreate(RequestModel):
    """``POST /api/v1/conversations/{id}/checkpoints``."""

    name: Text = Field(min_length=1, max_length=200)


class BranchRequest(RequestModel):
    """``POST /api/v1/checkpoints/{id}/branch``."""

    title: Text = Field(default="", max_length=200)


# Responses -------------------------------------------------------------------------------------


class UsageInfo(ResponseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ChatResponse(ResponseModel):
    """One turn's outcome. ``str(response)`` is the reply text."""

    agent_id: str
    conversation_id: str
    turn_id: str
    response: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    usage: UsageInfo = Field(default_factory=UsageInfo)
    timings: dict[str, float] = Field(default_factory=dict)
    status: str = "completed"
    iterations: int = 0
    created: bool = Field(default=False, description="True when this request created the agent.")
    model: str = ""

    def __str__(self) -> str:
        return self.response


class ChatEvent(ResponseModel):
    """One streamed event (SSE or WebSocket): ``start``, ``delta``, ``tool_call``, ``tool_result``,
    ``final`` or ``error``; WebSocket streams add ``accepted``. Type-specific fields are extra."""

    type: str
    agent_id: str | None = None
    conversation_id: str | None = None
    #: WebSocket only: the client's id of the chat this event belongs to.
    request_id: str | None = None
    #: Position in the stream (per SSE response, per WebSocket connection), contiguous from 1.
    seq: int | None = None
    #: ``delta`` events: the next piece of the reply.
    text: str | None = None
    #: ``error`` events: the problem+json body of what went wrong.
    problem: dict[str, Any] | None = None

    def result(self) -> ChatResponse:
        """The ``ChatResponse`` carried by a ``final`` event."""
        return ChatResponse.model_validate(self.model_dump())


class RuntimeStatus(ResponseModel):
    paused: bool = False
    running: list[str] = Field(default_factory=list, description="Conversations with a turn in flight.")
    queued: int = Field(default=0, description="Turns waiting for their conversation's writer slot.")


class AgentInfo(ResponseModel):
    agent_id: str
    system_prompt: str = ""
    roles: list[str] = Field(default_factory=list)
    model: str | None = None
    model_parameters: dict[str, Any] = Field(default_factory=dict)
    context_tokens: int | None = None
    tool_policy: Annotated[dict[str, Any], WithJsonSchema(TOOL_POLICY_SCHEMA)] = Field(default_factory=dict)
    parent_id: str | None = None
    paused: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    status: RuntimeStatus | None = Field(default=None, description="Live runtime state (GET of one agent).")


class CancelResult(ResponseModel):
    agent_id: str
    cancelled: list[str] = Field(description="Conversations whose in-flight turn was stopped.")


class MessageInfo(ResponseModel):
    id: str
    conversation_id: str
    seq: int
    agent_id: str
    sender: str
    recipient_id: str | None = None
    role: str
    message_type: str
    channel: str | None = None
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    usage: dict[str, int] | None = None
    turn_id: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: float


class HistoryPage(ResponseModel):
    conversation_id: str
    messages: list[MessageInfo]
    next_after_seq: int | None = Field(
        description="Pass as `after_seq` for the next page; null when this page is the last."
    )


class ConversationInfo(ResponseModel):
    id: str
    agent_id: str
    title: str = ""
    parent_id: str | None = None
    checkpoint_id: str | None = None
    kind: str = "main"
    run_mode: str = "chat"
    message_count: int = 0
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


class CheckpointInfo(ResponseModel):
    id: str
    conversation_id: str
    agent_id: str
    name: str
    seq: int
    created_at: float


class RollbackResult(ResponseModel):
    conversation: ConversationInfo
    archive: ConversationInfo | None = Field(description="Where the messages after the checkpoint went.")


class TaskInfo(ResponseModel):
    id: str
    agent_id: str
    prompt: str
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    conversation_id: str | None = None
    progress: dict[str, Any] = Field(default_factory=dict)
    result: str | None = None
    error: dict[str, Any] | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")


class WebSocketStats(ResponseModel):
    connections: int = 0
    accepted_total: int = 0
    overflow_disconnects: int = Field(default=0, description="Clients disconnected for reading too slowly.")


class HealthInfo(ResponseModel):
    status: Literal["ok", "stopping"]
    version: str
    uptime_seconds: float
    inflight_turns: int
    websocket: WebSocketStats


class VersionInfo(ResponseModel):
    version: str
    api: str = "v1"


class Problem(ResponseModel):
    """An RFC 9457 problem body (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


# WebSocket frames ------------------------------------------------------------------------------


class ChatFrame(_ChatFields):
    """Client → server on ``/api/v1/chat/stream``: start a chat."""

    type: Literal["chat"]
    request_id: Text = Field(min_length=1, max_length=128, description="Chosen by the client; echoed on events.")
    text: Text = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class CancelFrame(RequestModel):
    """Client → server on ``/api/v1/chat/stream``: cancel one in-flight chat."""

    type: Literal["cancel"]
    request_id: Text = Field(min_length=1, max_length=128)


ClientFrame = Annotated[ChatFrame | CancelFrame, Field(discriminator="type")]

__all__ = [
    "AgentCreate",
    "AgentId",
    "AgentInfo",
    "AgentUpdate",
    "BranchRequest",
    "CancelFrame",
    "CancelResult",
    "ChatEvent",
    "ChatFrame",
    "ChatOptions",
    "ChatRequest",
    "ChatResponse",
    "CheckpointCreate",
    "CheckpointInfo",
    "ClientFrame",
    "ConversationId",
    "ConversationInfo",
    "HealthInfo",
    "HistoryPage",
    "JsonObject",
    "MAX_SEQ",
    "MAX_TEXT_CHARS",
    "MessageInfo",
    "ModelString",
    "Problem",
    "RequestModel",
    "ResponseModel",
    "RollbackResult",
    "RuntimeStatus",
    "TaskInfo",
    "TaskOptions",
    "TaskRequest",
    "Text",
    "UsageInfo",
    "VersionInfo",
    "WebSocketStats",
]
