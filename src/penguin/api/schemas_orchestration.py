"""Wire models of the multi-agent resources: messages and receipts, rooms, coordination,
sub-agents, shared memory and tool approvals. Shared by the server and ``PenguinClient``.

Same conventions as ``penguin.api.schemas``: strict requests that forbid unknown fields, responses
that allow extra fields. The core validates addresses (``role:<name>``, ``human``), scopes and
limits and answers with typed errors; these models only check shape and size.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from penguin.api.schemas import (
    MAX_TEXT_CHARS,
    AgentId,
    JsonObject,
    ModelString,
    RequestModel,
    ResponseModel,
    Text,
    ToolPolicyObject,
    UsageInfo,
)

Address = Annotated[Text, Field(min_length=1, max_length=80, examples=["support", "role:qa", "human"])]
"""An agent id, ``role:<name>`` or ``human``."""
Content = Annotated[Text, Field(min_length=1, max_length=MAX_TEXT_CHARS)]
Channel = Annotated[Text, Field(min_length=1, max_length=80)]
MessageType = Annotated[Text, Field(min_length=1, max_length=32)]
Wait = Annotated[float, Field(gt=0, le=600, description="Seconds to wait for the answer.")]
Tag = Annotated[Text, Field(min_length=1, max_length=64)]


# Messages and receipts -------------------------------------------------------------------------


class MessageSend(RequestModel):
    """``POST /api/v1/messages``: deliver a message to an agent's inbox (processed as a turn)."""

    sender: AgentId = Field(default="human", description="Who sends it: `human` or an agent id.")
    recipient: Address
    content: Content
    channel: Channel | None = None
    message_type: MessageType = "message"
    metadata: JsonObject | None = None
    correlation_id: Annotated[Text, Field(min_length=1, max_length=64)] | None = None


class EnvelopeInfo(ResponseModel):
    id: str
    seq: int
    sender: str
    recipient: str | None = None
    channel: str | None = None
    message_type: str
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: float
    correlation_id: str | None = None
    causation_id: str | None = None


class ReceiptInfo(ResponseModel):
    """Delivery state of one message to one recipient: queued → delivered → processed | failed."""

    message_id: str
    recipient: str | None = None
    sender: str
    status: str
    reason: str | None = None
    reply_id: str | None = None
    conversation_id: str | None = None
    turn_id: str | None = None
    created_at: float
    updated_at: float


# Rooms -----------------------------------------------------------------------------------------


class RoomCreate(RequestModel):
    name: AgentId
    members: list[AgentId] = Field(default_factory=list, max_length=256)
    created_by: AgentId | None = None
    metadata: JsonObject | None = None


class RoomJoin(RequestModel):
    agent_id: AgentId


class RoomPostRequest(RequestModel):
    sender: AgentId = "human"
    content: Content
    message_type: MessageType = "message"
    metadata: JsonObject | None = None


class RoomInfo(ResponseModel):
    name: str
    members: list[str]
    created_by: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: float


class RoomPostInfo(ResponseModel):
    message: EnvelopeInfo
    receipts: list[ReceiptInfo] = Field(description="One `queued` receipt per member reached.")


# Coordination and sub-agents -------------------------------------------------------------------


class RoleAssignment(RequestModel):
    agent_ids: list[AgentId] = Field(max_length=256, description="The agents of the role, in round-robin order.")


class RoleMembers(ResponseModel):
    role: str
    agent_ids: list[str]


class _Ask(RequestModel):
    text: Content
    sender: AgentId = "human"
    timeout: Wait | None = None


class RoundRobinRequest(_Ask):
    role: AgentId
    metadata: JsonObject | None = None
    context: JsonObject | None = None


class ChainRequest(_Ask):
    roles: list[AgentId] = Field(min_length=1, max_length=32)
    context: JsonObject | None = None


class BroadcastRequest(_Ask):
    roles: list[AgentId] = Field(default_factory=list, max_length=64)
    agents: list[AgentId] = Field(default_factory=list, max_length=256)
    room: AgentId | None = None


class RouteRequest(_Ask):
    metadata: JsonObject | None = None
    context: JsonObject | None = None


class RouteRuleSpec(RequestModel):
    """One routing rule: every condition given must hold; then ``target`` is asked, then ``fallbacks``."""

    name: Text = Field(min_length=1, max_length=100)
    target: Address
    contains: list[Annotated[Text, Field(max_length=1000)]] = Field(default_factory=list, max_length=64,
                                                                   description="Any of these substrings.")
    pattern: Text | None = Field(default=None, max_length=1000, description="A regular expression.")
    metadata: JsonObject = Field(default_factory=dict)
    context: JsonObject = Field(default_factory=dict)
    fallbacks: list[Address] = Field(default_factory=list, max_length=16)


class RoutesSet(RequestModel):
    """``PUT /api/v1/coordinator/routes``: ordered policy routing rules and a default chain."""

    rules: list[RouteRuleSpec] = Field(max_length=256)
    default: list[Address] = Field(default_factory=list, max_length=16)


class AnswerInfo(ResponseModel):
    target: str
    status: str = Field(description="`processed`, `failed`, `timeout` or `pending`.")
    agent_id: str | None = None
    text: str | None = None
    usage: UsageInfo = Field(default_factory=UsageInfo)
    error: dict[str, Any] | None = None
    fallback_used: bool = False
    attempts: list[dict[str, Any]] = Field(default_factory=list)


class SubAgentCreate(RequestModel):
    """``POST /api/v1/agents/{parent_id}/subagents``: fields not given are inherited from the parent."""

    child_id: AgentId | None = None
    system_prompt: Text | None = Field(default=None, max_length=100_000)
    model: ModelString | None = None
    model_parameters: JsonObject | None = None
    tool_policy: ToolPolicyObject | None = None
    roles: list[AgentId] = Field(default_factory=list, max_length=64)
    metadata: JsonObject | None = None
    share_session: bool = False
    context_tokens: int | None = Field(default=None, ge=256, le=10_000_000)


class DelegateRequest(RequestModel):
    child_id: AgentId
    task: Content
    wait: bool = True
    timeout: Wait | None = None
    max_iterations: int = Field(default=5, ge=1, le=1000)
    context: JsonObject | None = None


class DelegationInfo(ResponseModel):
    task_id: str
    parent_id: str
    child_id: str
    status: str
    result: str | None = None
    error: dict[str, Any] | None = None
    usage: UsageInfo = Field(default_factory=UsageInfo)
    timed_out: bool = False


class AgentUsageInfo(UsageInfo):
    turns: int = 0


# Memory ----------------------------------------------------------------------------------------

MemoryScope = Literal["shared", "agent"]


class MemoryCreate(RequestModel):
    text: Content
    agent_id: AgentId | None = Field(default=None, description="The author (default: the `default` agent).")
    scope: MemoryScope = "shared"
    tags: list[Tag] = Field(default_factory=list, max_length=64)
    metadata: JsonObject | None = None
    source_conversation_id: Annotated[Text, Field(max_length=64)] | None = None
    source_message_id: Annotated[Text, Field(max_length=64)] | None = None


class MemoryUpdate(RequestModel):
    text: Content | None = None
    tags: list[Tag] | None = Field(default=None, max_length=64)
    metadata: JsonObject | None = None
    scope: MemoryScope | None = None


class MemoryInfo(ResponseModel):
    id: str
    text: str
    author: str
    scope: str
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    source_conversation_id: str | None = Field(default=None, description="Conversation the memory came from.")
    source_message_id: str | None = Field(default=None, description="Message the memory came from.")
    created_at: float
    updated_at: float


class MemoryHitInfo(MemoryInfo):
    score: float
    keyword_rank: int | None = None
    vector_rank: int | None = None
    similarity: float | None = None


class MemoryStatsInfo(ResponseModel):
    total: int
    shared: int
    private: int
    by_author: dict[str, int] = Field(default_factory=dict)
    embedder: str = Field(description="none (keyword search only), minilm, hash or openai:<model>.")
    dimension: int | None = Field(default=None, description="Vector size; null without an embedder.")
    vectors: int = Field(default=0, description="Memories that have a vector.")
    pending_vectors: int = Field(default=0, description="Memories whose vector is still being computed.")
    keyword_index: str = Field(default="", description="Keyword index: FTS5 on SQLite, full text on PostgreSQL.")
    last_error: str | None = Field(default=None, description="The embedder's last failure, if any.")


# Tools -----------------------------------------------------------------------------------------


class ApprovalDecision(RequestModel):
    reason: Text = Field(default="", max_length=2000, description="Shown to the model when denied.")


class ApprovalInfo(ResponseModel):
    id: str
    agent_id: str
    tool: str
    arguments: Any = None
    state: str
    reason: str | None = None
    created_at: float
    expires_at: float

__all__ = [
    "Address",
    "AgentUsageInfo",
    "AnswerInfo",
    "ApprovalDecision",
    "ApprovalInfo",
    "BroadcastRequest",
    "ChainRequest",
    "Channel",
    "Content",
    "DelegateRequest",
    "DelegationInfo",
    "EnvelopeInfo",
    "MemoryCreate",
    "MemoryHitInfo",
    "MemoryInfo",
    "MemoryScope",
    "MemoryStatsInfo",
    "MemoryUpdate",
    "MessageSend",
    "MessageType",
    "ReceiptInfo",
    "RoleAssignment",
    "RoleMembers",
    "RoomCreate",
    "RoomInfo",
    "RoomJoin",
    "RoomPostInfo",
    "RoomPostRequest",
    "RoundRobinRequest",
    "RouteRequest",
    "RouteRuleSpec",
    "RoutesSet",
    "SubAgentCreate",
    "Tag",
    "Wait",
    "_Ask",
]
