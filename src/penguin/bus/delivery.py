"""``Delivery`` and ``Outcome``: one message on its way to one agent, and how that ended.

A ``Delivery`` is what the inbox queues per recipient; its future resolves (always with a value,
never an exception, so nothing is left unretrieved) to the ``Outcome``: the final receipt, the
turn's ``ChatResult`` and the published reply, or the error that failed it.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass
from typing import Any

from penguin.bus.envelope import Envelope
from penguin.bus.receipts import Receipt, ReceiptStatus
from penguin.engine.results import ChatResult
from penguin.errors import PenguinError


@dataclass(slots=True, kw_only=True)
class Outcome:
    """How a delivery ended, or where it stands when the wait timed out."""

    receipt: Receipt
    result: ChatResult | None = None
    #: The published reply envelope, once processed.
    reply: Envelope | None = None
    error: PenguinError | None = None
    #: True when the caller stopped waiting before the delivery ended.
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.receipt.status is ReceiptStatus.PROCESSED

    @property
    def text(self) -> str | None:
        return self.reply.content if self.reply is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "receipt": self.receipt.to_dict(),
            "reply": self.text,
            "reply_id": self.reply.id if self.reply is not None else None,
            "usage": self.result.usage.to_dict() if self.result is not None else None,
            "error": self.error.to_problem() if self.error is not None else None,
            "timed_out": self.timed_out,
        }


class Delivery:
    """One message on its way to one agent. ``Inbox.wait`` gives its ``Outcome``."""

    __slots__ = ("abandoned", "context", "env", "future", "recipient", "redelivered", "room", "task")

    def __init__(self, env: Envelope, recipient: str, *, room: str | None, redelivered: bool = False) -> None:
        self.env = env
        self.recipient = recipient
        #: The room it was posted to (its reply goes back to the room), else None.
        self.room = room
        self.redelivered = redelivered
        #: Set to the reason when the sender abandons it (timeout, agent removed).
        self.abandoned: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        #: The sender's context (its request id for log lines), in which the delivery's turn runs.
        self.context = contextvars.copy_context()

    @property
    def key(self) -> tuple[str, str]:
        return (self.env.id, self.recipient)
