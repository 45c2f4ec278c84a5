"""The message bus: envelopes, subscriptions with replay, durable per-agent inboxes, rooms."""

from penguin.bus._commit import GroupCommit
from penguin.bus.delivery import Delivery, Outcome
from penguin.bus.envelope import MESSAGE_TYPES, Envelope, IdFactory
from penguin.bus.errors import (
    BusClosed,
    MessageNotFound,
    PersistFailed,
    ReceiptNotFound,
    RoomExists,
    RoomNotFound,
    SubscriberDisconnected,
)
from penguin.bus.filters import EnvelopeFilter
from penguin.bus.inbox import Inbox
from penguin.bus.kv import KVStore
from penguin.bus.memory import MemoryBus
from penguin.bus.protocol import MessageBus
from penguin.bus.receipts import Receipt, ReceiptStatus
from penguin.bus.rooms import Room, RoomPost, Rooms
from penguin.bus.subscription import OverflowPolicy, Subscription, SubscriptionState

__all__ = [
    "MESSAGE_TYPES",
    "BusClosed",
    "Delivery",
    "Envelope",
    "EnvelopeFilter",
    "GroupCommit",
    "IdFactory",
    "Inbox",
    "KVStore",
    "MemoryBus",
    "MessageBus",
    "MessageNotFound",
    "Outcome",
    "OverflowPolicy",
    "PersistFailed",
    "Receipt",
    "ReceiptNotFound",
    "ReceiptStatus",
    "Room",
    "RoomExists",
    "RoomNotFound",
    "RoomPost",
    "Rooms",
    "Subscription",
    "SubscriptionState",
    "SubscriberDisconnected",
]
