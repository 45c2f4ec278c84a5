"""``Envelope``: one message or event on the bus, and the filters that select envelopes.

Everything that moves between agents, humans and observers travels in an envelope: chat
messages, tool actions, status changes, lifecycle events, delegations and QA verdicts. An
envelope is a frozen msgspec struct because it sits on the hot path (the bus must move at least
100k envelopes a second from publisher to subscriber in-process); building one costs ~0.1 µs
against ~1 µs for a frozen dataclass, and ``replace`` (used to stamp ``seq``) is as cheap.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from penguin.errors import ValidationFailed
from penguin.naming import DEFAULT_TENANT

#: Message types Penguin itself publishes. Others are allowed (``^[a-z][a-z0-9_.-]{0,31}$``).
MESSAGE_TYPES = ("message", "action", "status", "event", "delegation", "verdict", "summary")
_MESSAGE_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
#: Senders are ``human``, ``system``, an agent id, or ``<kind>:<name>`` (``tool:x``, ``role:x``).
_ADDRESS = re.compile(r"^[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_.-]{1,64})?$")
_CHANNEL = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, like penguin.naming.new_id


class Envelope(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One message or event. Immutable; the bus returns a copy stamped with ``seq``.

    ``gc=False``: envelopes hold only JSON-like data, so they can never be part of a reference
    cycle and need not be tracked by the garbage collector (this halves construction time).
    """

    #: Unique, time-ordered id (``msg_...``); also the message id of receipts.
    id: str
    #: Who wrote it: ``human``, ``system``, an agent id, or ``tool:<name>``.
    sender: str
    #: Global position on the bus, 1-based and gapless; 0 until published.
    seq: int = 0
    tenant_id: str = DEFAULT_TENANT
    #: An agent id, ``role:<name>``, ``human``, or None for a room post / broadcast event.
    recipient: str | None = None
    #: A room name, ``agent:<id>`` for an agent's own event stream, or None for direct messages.
    channel: str | None = None
    #: ``message``, ``action``, ``status``, ``event``, ``delegation``, ``verdict``, ...
    message_type: str = "message"
    #: The text of a message, or the event name (``turn.completed``, ``task.running``, ...).
    content: str = ""
    #: Structured payload (JSON-serializable); for events, the event's data.
    metadata: Mapping[str, Any] = msgspec.field(default_factory=dict)
    #: Epoch seconds when the envelope was built.
    created_at: float = msgspec.field(default_factory=time.time)
    #: Groups every envelope of one conversation thread / workflow (e.g. a role chain).
    correlation_id: str | None = None
    #: The envelope that caused this one (a reply's request, a receipt's message).
    causation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seq": self.seq,
            "tenant_id": self.tenant_id,
            "sender": self.sender,
            "recipient": self.recipient,
            "channel": self.channel,
            "message_type": self.message_type,
            "content": self.content,
            "metadata": dict(self.metadata),
            "created_at": self.created_at,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Envelope:
        """Rebuild an envelope from ``to_dict`` output (unknown keys are ignored).

        Raises:
            ValidationFailed: a required field is missing or has the wrong type.
        """
        try:
            return msgspec.convert(
                {k: v for k, v in data.items() if k in _FIELDS}, type=cls, strict=False
            )
        except msgspec.ValidationError as exc:
            raise ValidationFailed(f"invalid envelope: {exc}", field="envelope") from None


_FIELDS = frozenset(Envelope.__struct_fields__)


def check_address(value: object, field: str) -> str:
    """Validate a sender or recipient address.

    Raises:
        ValidationFailed: naming the rule.
    """
    if not isinstance(value, str) or _ADDRESS.fullmatch(value) is None:
        raise ValidationFailed(
            f"invalid {field} {str(value)[:80]!r}: use 'human', 'system', an agent id or '<kind>:<name>' "
            "(e.g. 'role:qa')",
            field=field,
        )
    return value


def check_channel(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or _CHANNEL.fullmatch(value) is None:
        raise ValidationFailed(
            f"invalid channel {str(value)[:80]!r}: 1-80 characters of A-Z a-z 0-9 _ . : -", field="channel"
        )
    return value


def check_message_type(value: object) -> str:
    if not isinstance(value, str) or _MESSAGE_TYPE.fullmatch(value) is None:
        raise ValidationFailed(
            f"invalid message_type {str(value)[:40]!r}: lowercase, 1-32 characters (e.g. {', '.join(MESSAGE_TYPES)})",
            field="message_type",
        )
    return value


class IdFactory:
    """Builds envelope ids shaped like ``penguin.naming.new_id`` but ~10x cheaper.

    ``<prefix>_`` + 10 base32 chars of milliseconds + 6 random chars fixed per factory + an 8-char
    hex counter. Ids sort by creation millisecond (and by creation order within one factory) and
    stay unique across processes (the random node part) without reading ``os.urandom`` per id,
    which dominated the publish path.
    """

    __slots__ = ("_counter", "_head", "_ms", "_node", "prefix")

    def __init__(self, prefix: str = "msg") -> None:
        self.prefix = prefix
        rand = int.from_bytes(os.urandom(4), "big")
        self._node = _base32(rand, 6)
        self._counter = int.from_bytes(os.urandom(3), "big")
        self._ms = -1
        self._head = ""

    def __call__(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            self._ms = ms
            self._head = f"{self.prefix}_{_base32(ms, 10)}{self._node}"
        self._counter = (self._counter + 1) & 0xFFFFFFFF
        return f"{self._head}{self._counter:08x}"


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
