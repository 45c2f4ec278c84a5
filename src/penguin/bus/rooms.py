"""``Rooms``: named groups of agents that share a channel.

A post to a room is one envelope with no recipient on channel ``<room name>``; every member
except the sender gets it in its durable inbox and processes it as a turn, and each reply is
published back to the room (recipient None, same channel). Replies do not start turns in the
other members, so a room never loops on itself. A room's history is the persisted envelopes of
its channel (posts, replies and ``room.*`` membership events), read from the bus.

Room names follow the agent id rule, so they cannot collide with the ``agent:<id>`` channels.
Membership is kept in memory and persisted in the ``kv`` table (namespace ``rooms``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from penguin.bus.delivery import Delivery
from penguin.bus.envelope import Envelope, IdFactory, check_address, check_message_type
from penguin.bus.errors import RoomExists, RoomNotFound
from penguin.bus.filters import EnvelopeFilter
from penguin.bus.inbox import Inbox
from penguin.bus.kv import KVStore
from penguin.bus.memory import MemoryBus
from penguin.bus.receipts import Receipt
from penguin.errors import AgentNotFound, ValidationFailed
from penguin.naming import validate_agent_id

NAMESPACE = "rooms"


@dataclass(frozen=True, slots=True, kw_only=True)
class Room:
    """A room and its members (agent ids, in join order)."""

    name: str
    members: tuple[str, ...] = ()
    created_by: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "members": list(self.members),
            "created_by": self.created_by,
            "metadata": dict(self.metadata),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Room:
        return cls(
            name=data["name"],
            members=tuple(data.get("members") or ()),
            created_by=data.get("created_by"),
            metadata=dict(data.get("metadata") or {}),
            created_at=float(data.get("created_at") or time.time()),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomPost:
    """A post that was accepted: its envelope and one ``queued`` receipt per member reached."""

    envelope: Envelope
    receipts: tuple[Receipt, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"message": self.envelope.to_dict(), "receipts": [r.to_dict() for r in self.receipts]}


class Rooms:
    """Creates rooms, tracks membership, fans posts out to members' inboxes."""

    def __init__(self, kv: KVStore, bus: MemoryBus, inbox: Inbox, *, tenant_id: str,
                 agent_exists: Callable[[str], bool]) -> None:
        self._kv = kv
        self._bus = bus
        self._inbox = inbox
        self._tenant = tenant_id
        self._agent_exists = agent_exists
        self._rooms: dict[str, Room] = {}
        self._ids = IdFactory("msg")

    async def load(self) -> None:
        self._rooms = {name: Room.from_dict(data) for name, data in (await self._kv.load(NAMESPACE)).items()}

    def get(self, name: str) -> Room:
        room = self._rooms.get(name)
        if room is None:
            validate_agent_id(name, field="room")
            raise RoomNotFound(f"no room {name!r}; create it first (create_room)", field="room")
        return room

    def all(self, *, member: str | None = None) -> list[Room]:
        rooms = sorted(self._rooms.values(), key=lambda r: r.name)
        return [r for r in rooms if member is None or member in r.members]

    async def create(self, name: str, *, members: Iterable[str] = (), created_by: str | None = None,
                     metadata: Mapping[str, Any] | None = None) -> Room:
        """Create a room, optionally with initial members.

        Raises:
            InvalidAgentId: the name or a member breaks the id rule.
            AgentNotFound: a member does not exist.
            RoomExists: the name is taken.
        """
        validate_agent_id(name, field="room")
        if name in self._rooms:
            raise RoomExists(f"room {name!r} already exists; join it instead", field="room")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValidationFailed("metadata must be an object", field="metadata")
        initial = tuple(dict.fromkeys(self._member(m) for m in members))
        room = Room(name=name, members=initial, created_by=created_by, metadata=dict(metadata or {}))
        await self._save(room, "room.created", created_by or "system")
        return room

    async def join(self, name: str, agent_id: str) -> Room:
        """Add a member (joining twice is a no-op)."""
        room = self.get(name)
        agent_id = self._member(agent_id)
        if agent_id in room.members:
            return room
        room = dataclasses.replace(room, members=(*room.members, agent_id))
        await self._save(room, "room.joined", agent_id)
        return room

    async def leave(self, name: str, agent_id: str) -> Room:
        """Remove a member (leaving a room one is not in is a no-op)."""
        room = self.get(name)
        validate_agent_id(agent_id)
        if agent_id not in room.members:
            return room
        room = dataclasses.replace(room, members=tuple(m for m in room.members if m != agent_id))
        await self._save(room, "room.left", agent_id)
        return room

    async def forget_agent(self, agent_id: str) -> None:
        """Take a removed agent out of every room."""
        for room in self.all(member=agent_id):
            await self.leave(room.name, agent_id)

    async def post(
        self,
        name: str,
        sender: str,
        content: str,
        *,
        message_type: str = "message",
        metadata: Mapping[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> tuple[Envelope, list[Delivery]]:
        """Publish a post to the room and queue it for every member but the sender.

        Raises:
            RoomNotFound, ValidationFailed: bad room, sender or content.
        """
        room = self.get(name)
        check_address(sender, "sender")
        check_message_type(message_type)
        if not isinstance(content, str) or not content.strip():
            raise ValidationFailed("content must be a non-empty string", field="content")
        env = await self._bus.publish(Envelope(
            id=self._ids(), sender=sender, recipient=None, channel=name, message_type=message_type,
            content=content, metadata=dict(metadata or {}), tenant_id=self._tenant, correlation_id=correlation_id,
        ))
        targets = [m for m in room.members if m != sender and self._agent_exists(m)]
        deliveries = await self._inbox.submit(env, targets, addressed_to=name, room=name)
        return env, deliveries

    async def history(self, name: str, *, since_seq: int = 0, limit: int = 100,
                      message_type: str | None = None) -> list[Envelope]:
        """The room's envelopes after ``since_seq``, oldest first (posts, replies, events)."""
        self.get(name)
        return await self._bus.replay(
            EnvelopeFilter.of(channel=name, message_type=message_type, tenant_id=self._tenant),
            since_seq=since_seq, limit=limit,
        )

    def _member(self, agent_id: str) -> str:
        validate_agent_id(agent_id)
        if not self._agent_exists(agent_id):
            raise AgentNotFound(f"no agent {agent_id!r}; create it before adding it to a room", field="agent_id")
        return agent_id

    async def _save(self, room: Room, event: str, actor: str) -> None:
        self._rooms[room.name] = room
        self._kv.put(NAMESPACE, room.name, room.to_dict())
        await self._bus.publish(Envelope(
            id=self._ids(), sender=actor, channel=room.name, message_type="event", content=event,
            metadata=room.to_dict(), tenant_id=self._tenant,
        ))
        await self._kv.commit()
