"""``EnvelopeFilter``: which envelopes a subscriber, replay or history query wants.

One filter type serves the live path (``matches``, called per publish per candidate subscriber)
and the stored path (``where``, the same rule as SQL), so a replay after a restart selects exactly
what the live subscription would have delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from penguin.bus.envelope import Envelope, check_address, check_channel, check_message_type
from penguin.naming import validate_agent_id


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvelopeFilter:
    """All set fields must match (None = any). The default filter matches every envelope."""

    #: Envelopes that involve this agent: it sent them, they are addressed to it, or they are on
    #: its own event channel ``agent:<id>``.
    agent_id: str | None = None
    #: Exact sender.
    sender: str | None = None
    #: Exact recipient (an agent id, ``role:<name>``, ``human``).
    recipient: str | None = None
    #: Exact channel (a room name, ``agent:<id>``).
    channel: str | None = None
    #: Exact message type (``message``, ``event``, ``status``, ...).
    message_type: str | None = None
    #: Messages of one tenant only (None = the bus's own tenant and every other).
    tenant_id: str | None = None

    def __post_init__(self) -> None:
        if self.agent_id is not None:
            validate_agent_id(self.agent_id)
        if self.sender is not None:
            check_address(self.sender, "sender")
        if self.recipient is not None:
            check_address(self.recipient, "recipient")
        check_channel(self.channel)
        if self.message_type is not None:
            check_message_type(self.message_type)

    @classmethod
    def of(cls, **fields: Any) -> EnvelopeFilter:
        """Build a filter from keyword fields, ignoring None values."""
        return cls(**{k: v for k, v in fields.items() if v is not None})

    @property
    def agent_channel(self) -> str | None:
        return None if self.agent_id is None else f"agent:{self.agent_id}"

    def matches(self, env: Envelope) -> bool:
        if self.recipient is not None and env.recipient != self.recipient:
            return False
        if self.channel is not None and env.channel != self.channel:
            return False
        if self.message_type is not None and env.message_type != self.message_type:
            return False
        if self.sender is not None and env.sender != self.sender:
            return False
        if self.tenant_id is not None and env.tenant_id != self.tenant_id:
            return False
        a = self.agent_id
        return a is None or env.sender == a or env.recipient == a or env.channel == self.agent_channel

    def where(self, table: sa.Table) -> list[sa.ColumnElement[bool]]:
        """The same rule as ``matches``, as SQL conditions on the ``envelopes`` table."""
        c = table.c
        out: list[sa.ColumnElement[bool]] = []
        if self.recipient is not None:
            out.append(c.recipient == self.recipient)
        if self.channel is not None:
            out.append(c.channel == self.channel)
        if self.message_type is not None:
            out.append(c.message_type == self.message_type)
        if self.sender is not None:
            out.append(c.sender == self.sender)
        if self.tenant_id is not None:
            out.append(c.tenant_id == self.tenant_id)
        if self.agent_id is not None:
            out.append(
                sa.or_(
                    c.sender == self.agent_id, c.recipient == self.agent_id, c.channel == self.agent_channel
                )
            )
        return out

    def to_dict(self) -> dict[str, str]:
        fields = ("agent_id", "sender", "recipient", "channel", "message_type", "tenant_id")
        return {k: v for k in fields if (v := getattr(self, k)) is not None}
