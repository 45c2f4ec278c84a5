"""``Receipt``: the observable delivery state of one message to one recipient.

States and their only transitions (each checked; a bad transition is a bug, raised as
``Conflict``)::

    queued ──► delivered ──► processed
       │           │
       └───────────┴──────► failed (reason)

    published            terminal at once: the message is on the bus for a reader that is not
                         an agent (``human``); nothing processes it, so nothing claims it was.

``queued``: persisted and waiting in the recipient's inbox (also while the agent is paused).
``delivered``: the agent's turn on it has started (the runtime passed its pause gate).
``processed``: the turn finished and its reply was published (``reply_id``).
``failed``: the turn failed, was cancelled or timed out, or the agent was removed (``reason``).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Row

from penguin.errors import Conflict
from penguin.naming import DEFAULT_TENANT


class ReceiptStatus(enum.StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    PROCESSED = "processed"
    FAILED = "failed"
    PUBLISHED = "published"

    @property
    def final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({ReceiptStatus.PROCESSED, ReceiptStatus.FAILED, ReceiptStatus.PUBLISHED})
_NEXT: dict[ReceiptStatus, frozenset[ReceiptStatus]] = {
    ReceiptStatus.QUEUED: frozenset({ReceiptStatus.DELIVERED, ReceiptStatus.FAILED}),
    ReceiptStatus.DELIVERED: frozenset({ReceiptStatus.PROCESSED, ReceiptStatus.FAILED}),
    ReceiptStatus.PROCESSED: frozenset(),
    ReceiptStatus.FAILED: frozenset(),
    ReceiptStatus.PUBLISHED: frozenset(),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """Delivery state of message ``message_id`` to ``recipient``. Immutable; ``advance`` copies."""

    #: The envelope id of the message.
    message_id: str
    #: The agent that processes it (a role or room address is resolved to agents first), or
    #: ``human`` for a ``published`` receipt.
    recipient: str
    sender: str
    status: ReceiptStatus
    #: The address as the sender wrote it: an agent id, ``role:<name>``, ``human`` or a room name.
    addressed_to: str | None = None
    channel: str | None = None
    message_type: str = "message"
    #: Why it failed (or how it was recovered); None otherwise.
    reason: str | None = None
    #: The envelope id of the reply, once processed.
    reply_id: str | None = None
    #: The conversation and turn that processed it, once delivered.
    conversation_id: str | None = None
    turn_id: str | None = None
    #: The message's bus seq (arrival order).
    seq: int = 0
    tenant_id: str = DEFAULT_TENANT
    created_at: float = dataclasses.field(default_factory=time.time)
    updated_at: float = dataclasses.field(default_factory=time.time)

    @property
    def key(self) -> tuple[str, str]:
        return (self.message_id, self.recipient)

    def advance(self, status: ReceiptStatus, **changes: Any) -> Receipt:
        """The receipt in its next state.

        Raises:
            Conflict: ``status`` is not reachable from the current state.
        """
        if status not in _NEXT[self.status]:
            raise Conflict(
                f"receipt of {self.message_id!r} for {self.recipient!r} cannot go from {self.status.value} "
                f"to {status.value}",
                field="status",
            )
        return dataclasses.replace(self, status=status, updated_at=time.time(), **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "recipient": self.recipient,
            "sender": self.sender,
            "status": self.status.value,
            "addressed_to": self.addressed_to,
            "channel": self.channel,
            "message_type": self.message_type,
            "reason": self.reason,
            "reply_id": self.reply_id,
            "conversation_id": self.conversation_id,
            "turn_id": self.turn_id,
            "seq": self.seq,
            "tenant_id": self.tenant_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def row_receipt(r: Row[Any]) -> Receipt:
    return Receipt(
        message_id=r.message_id,
        recipient=r.recipient,
        sender=r.sender,
        status=ReceiptStatus(r.status),
        addressed_to=r.addressed_to,
        channel=r.channel,
        message_type=r.message_type,
        reason=r.reason,
        reply_id=r.reply_id,
        conversation_id=r.conversation_id,
        turn_id=r.turn_id,
        seq=r.seq,
        tenant_id=r.tenant_id,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )
