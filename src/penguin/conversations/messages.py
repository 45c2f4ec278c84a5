"""Messages and conversations as plain data.

A ``Message`` is one row of the flat log. Its ``wire()`` form (the OpenAI chat shape sent to
models) is computed once and cached, because the turn loop resends the whole history every call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from penguin.naming import new_id

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True, kw_only=True)
class Message:
    """One entry of a conversation's flat log."""

    id: str = field(default_factory=lambda: new_id("msg"))
    conversation_id: str
    #: Position in the conversation, 1-based and gapless; assigned when persisted.
    seq: int = 0
    #: The agent whose conversation this is.
    agent_id: str
    #: Who wrote it: ``human``, an agent id, ``tool:<name>`` or ``system``.
    sender: str
    #: Who it is addressed to (agent id, ``role:<name>``, ``human``) or None.
    recipient_id: str | None = None
    role: Role
    #: ``message``, ``action`` (tool call/result), ``status``, ``event``, ``delegation``, ``verdict``, ``summary``.
    message_type: str = "message"
    channel: str | None = None
    content: str = ""
    #: For assistant messages: OpenAI-shaped tool calls.
    tool_calls: list[dict[str, Any]] | None = None
    #: For tool results: the call they answer, and the tool name.
    tool_call_id: str | None = None
    name: str | None = None
    #: Token usage of the model call that produced it.
    usage: dict[str, int] | None = None
    turn_id: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    tenant_id: str = "default"
    _wire: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def wire(self) -> dict[str, Any]:
        """The OpenAI chat-completions form of this message (cached)."""
        cached = self._wire
        if cached is not None:
            return cached
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
            if not self.content:
                out["content"] = None
        if self.role == "tool":
            out["tool_call_id"] = self.tool_call_id
            if self.name:
                out["name"] = self.name
        self._wire = out
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "seq": self.seq,
            "agent_id": self.agent_id,
            "sender": self.sender,
            "recipient_id": self.recipient_id,
            "role": self.role,
            "message_type": self.message_type,
            "channel": self.channel,
            "content": self.content,
            "tool_calls": self.tool_calls,
            "tool_call_id": self.tool_call_id,
            "name": self.name,
            "usage": self.usage,
            "turn_id": self.turn_id,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "tenant_id": self.tenant_id,
        }


@dataclass(slots=True, kw_only=True)
class Conversation:
    id: str
    agent_id: str
    tenant_id: str = "default"
    title: str = ""
    #: For branches and rollback archives: the conversation they came from.
    parent_id: str | None = None
    checkpoint_id: str | None = None
    #: ``main``, ``branch`` or ``archive`` (messages set aside by a rollback).
    kind: str = "main"
    #: ``chat`` or ``task`` (RunMode).
    run_mode: str = "chat"
    last_seq: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "tenant_id": self.tenant_id,
            "title": self.title,
            "parent_id": self.parent_id,
            "checkpoint_id": self.checkpoint_id,
            "kind": self.kind,
            "run_mode": self.run_mode,
            "message_count": self.last_seq,
            "metadata": self.metadata,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    id: str
    conversation_id: str
    agent_id: str
    name: str
    #: The last message seq included in the checkpoint.
    seq: int
    created_at: float
    tenant_id: str = "default"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "agent_id": self.agent_id,
            "name": self.name,
            "seq": self.seq,
            "created_at": self.created_at,
        }
