"""Errors of the bus, the inbox and rooms, as subclasses of Penguin's typed hierarchy.

They subclass the shared bases so the API edge maps them with its one table (by ``status`` and
``code``) without knowing about them::

    PenguinError
    ├── UserError
    │   ├── NotFound
    │   │   ├── MessageNotFound         404, no envelope with that id
    │   │   ├── ReceiptNotFound         404, no receipt for that message (and recipient)
    │   │   └── RoomNotFound            404, no room with that name
    │   └── Conflict
    │       └── RoomExists              409, the room name is taken
    └── RuntimeFailure
        ├── BusClosed                   the bus was stopped; start the core again
        ├── SubscriberDisconnected      a subscriber fell behind its queue bound and was cut off
        └── PersistFailed               the database refused a batch of bus writes
"""

from __future__ import annotations

from penguin.errors import Conflict, NotFound, RuntimeFailure


class MessageNotFound(NotFound):
    code = "message-not-found"
    title = "Message not found"


class ReceiptNotFound(NotFound):
    code = "receipt-not-found"
    title = "Receipt not found"


class RoomNotFound(NotFound):
    code = "room-not-found"
    title = "Room not found"


class RoomExists(Conflict):
    code = "room-exists"
    title = "Room already exists"


class BusClosed(RuntimeFailure):
    status = 503
    code = "bus-closed"
    title = "Message bus closed"


class SubscriberDisconnected(RuntimeFailure):
    """Raised by a subscription's iterator after its queue overflowed under the ``disconnect`` policy.

    Every envelope up to ``resume_seq`` was delivered; subscribe again with
    ``since_seq=resume_seq`` to receive the rest exactly once.
    """

    status = 409
    code = "subscriber-disconnected"
    title = "Subscriber disconnected"

    def __init__(self, detail: str, *, resume_seq: int) -> None:
        super().__init__(detail, resume_seq=resume_seq)
        self.resume_seq = resume_seq


class PersistFailed(RuntimeFailure):
    status = 503
    code = "persist-failed"
    title = "Could not persist messages"


__all__ = [
    "BusClosed",
    "MessageNotFound",
    "PersistFailed",
    "ReceiptNotFound",
    "RoomExists",
    "RoomNotFound",
    "SubscriberDisconnected",
]
