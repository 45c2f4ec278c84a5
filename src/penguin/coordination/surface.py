"""``MessagingSurface``: the messaging, rooms, coordination and sub-agent methods of ``PenguinCore``.

``PenguinCore`` inherits this class so that its public API stays one object while the code for
this part lives beside the services it drives (and ``core.py`` stays small). Nothing here is
state of its own: ``_init_messaging`` builds the services on the core (bus, inbox, rooms,
coordinator, sub-agents, usage ledger) from the core's database, registry and settings, and
the core starts and stops them in ``start``/``stop``. The ``_agent_event``, ``_task_changed``
and ``_turn_completed`` hooks publish every agent, task and turn state change on the bus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from penguin.agents.registry import AgentRegistry
from penguin.agents.spec import AgentSpec
from penguin.bus._commit import GroupCommit
from penguin.bus.envelope import Envelope, IdFactory
from penguin.bus.errors import BusClosed, MessageNotFound
from penguin.bus.filters import EnvelopeFilter
from penguin.bus.inbox import Inbox
from penguin.bus.kv import KVStore
from penguin.bus.memory import MemoryBus
from penguin.bus.receipts import Receipt
from penguin.bus.rooms import Room, RoomPost, Rooms
from penguin.bus.subscription import OverflowPolicy, Subscription
from penguin.config import Settings
from penguin.conversations.store import ConversationStore
from penguin.coordination.coordinator import Lineage, MultiAgentCoordinator, RouteResult
from penguin.coordination.messenger import Messenger
from penguin.coordination.routing import Router, RouteRule
from penguin.coordination.subagents import DelegationResult, SubAgents
from penguin.coordination.targets import Answer, LiteFn, Request, Target
from penguin.coordination.tools import TOOLS
from penguin.coordination.usage import AgentUsage, UsageLedger
from penguin.engine.results import ChatResult
from penguin.engine.tasks import Task
from penguin.errors import PenguinError, ValidationFailed
from penguin.storage.database import Database
from penguin.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from penguin.core import PenguinCore

log = logging.getLogger("penguin")


class MessagingSurface:
    """Mixin of ``PenguinCore``; see the module docstring."""

    # Provided by PenguinCore.__init__ before _init_messaging runs.
    settings: Settings
    tenant_id: str
    db: Database
    agents: AgentRegistry
    conversations: ConversationStore
    tools: ToolRegistry
    # Built by _init_messaging.
    bus: MemoryBus
    inbox: Inbox
    rooms: Rooms
    messenger: Messenger
    coordinator: MultiAgentCoordinator
    subagents: SubAgents
    usage: UsageLedger
    _bus_writer: GroupCommit
    _bus_kv: KVStore
    _event_ids: IdFactory

    # Wiring ----------------------------------------------------------------------------------

    def _init_messaging(self) -> None:
        core = cast("PenguinCore", self)
        tenant = self.tenant_id
        exists = self.agents.__contains__
        self._bus_writer = GroupCommit(self.db)
        self._bus_kv = KVStore(self.db, self._bus_writer, tenant_id=tenant)
        self._event_ids = IdFactory("evt")
        self.bus = MemoryBus(self.db, self._bus_writer)
        self.usage = UsageLedger(self._bus_kv)
        self.inbox = Inbox(self.db, self._bus_writer, self.bus, tenant_id=tenant, run_turn=core.chat,
                           agent_exists=exists, find_processed=self._find_processed)
        self.rooms = Rooms(self._bus_kv, self.bus, self.inbox, tenant_id=tenant, agent_exists=exists)
        self.messenger = Messenger(self.bus, self.inbox, tenant_id=tenant, agent_exists=exists,
                                   resolve_role=lambda role: self.coordinator.resolve_role(role))
        self.coordinator = MultiAgentCoordinator(kv=self._bus_kv, agents=self.agents, messenger=self.messenger,
                                                 inbox=self.inbox, rooms=self.rooms)
        self.subagents = SubAgents(core, bus=self.bus, usage=self.usage, tenant_id=tenant)
        self.tools.register_all(TOOLS)

    async def _start_bus(self) -> None:
        """Open the bus early in ``start`` so the registry's own startup changes are published."""
        self._bus_writer.start()
        await self.bus.start()

    async def _start_messaging(self) -> None:
        """Load rooms, roles, routes and usage, then re-deliver messages left by a previous run."""
        await self.rooms.load()
        await self.coordinator.load()
        await self.usage.load()
        await self.inbox.start()

    async def _stop_messaging(self) -> None:
        """Close subscriptions and persist everything accepted (after inboxes and tasks stopped)."""
        await self.bus.aclose()
        await self._bus_writer.aclose()

    # Events: every state change is published ------------------------------------------------

    async def _publish_event(self, agent_id: str, name: str, data: Mapping[str, Any], *, sender: str = "system",
                             message_type: str = "event", correlation_id: str | None = None) -> None:
        envelope = Envelope(
            id=self._event_ids(), sender=sender, channel=f"agent:{agent_id}", message_type=message_type,
            content=name, metadata=dict(data), tenant_id=self.tenant_id, correlation_id=correlation_id,
        )
        try:
            await self.bus.publish(envelope)
        except BusClosed:
            # A change that already happened (a turn that finished while the core was stopping)
            # must not be reported to its caller as failed; the missing event is logged instead.
            log.warning("penguin: event %s of agent %s not published: the bus is stopped", name, agent_id)

    async def _agent_event(self, kind: str, spec: AgentSpec) -> None:
        await self._publish_event(spec.agent_id, f"agent.{kind}", spec.to_dict())
        if kind == "removed":
            await self.inbox.drop_agent(spec.agent_id)
            await self.rooms.forget_agent(spec.agent_id)
            await self.coordinator.forget_agent(spec.agent_id)

    async def _task_changed(self, task: Task) -> None:
        await self._publish_event(task.agent_id, f"task.{task.status.value}", task.to_dict(),
                                  message_type="status", correlation_id=task.id)
        await self.subagents.task_changed(task)

    async def _turn_completed(self, result: ChatResult, *, sender: str, channel: str | None,
                              task_id: str | None, metadata: Mapping[str, Any] | None = None) -> None:
        self.usage.add(result.agent_id, result.usage, task_id=task_id)
        data = {
            "turn_id": result.turn_id, "conversation_id": result.conversation_id, "status": result.status,
            "iterations": result.iterations, "model": result.model, "usage": result.usage.to_dict(),
            "timings": {k: round(v, 3) for k, v in result.timings.items()}, "task_id": task_id,
            "from": sender, "channel": channel, "tool_calls": len(result.tool_calls),
        }
        correlation = (metadata or {}).get("message_id")
        await self._publish_event(result.agent_id, "turn.completed", data, sender=result.agent_id,
                                  correlation_id=correlation if isinstance(correlation, str) else None)

    async def _turn_failed(self, agent_id: str, error: PenguinError, *, sender: str, channel: str | None,
                           task_id: str | None) -> None:
        """Publish ``turn.failed`` (the error's problem body) so failures are counted like turns."""
        data = {"error": error.code, "status": error.status, "detail": error.detail[:500], "task_id": task_id,
                "from": sender, "channel": channel}
        await self._publish_event(agent_id, "turn.failed", data, sender=agent_id)

    async def _find_processed(self, agent_id: str, message_id: str) -> str | None:
        """The reply of a completed turn on ``message_id`` in the agent's conversation, if any."""
        history = await self.conversations.messages((await self.conversations.default_for(agent_id)).id)
        for index in range(len(history) - 1, -1, -1):
            message = history[index]
            if message.role == "user" and (message.metadata or {}).get("message_id") == message_id:
                replies = [m for m in history[index + 1:] if m.turn_id == message.turn_id and m.role == "assistant"]
                return replies[-1].content if replies else None
        return None

    # Messages --------------------------------------------------------------------------------

    async def send_message(self, sender: str, recipient: str | None, content: str, *, channel: str | None = None,
                           message_type: str = "message", metadata: Mapping[str, Any] | None = None,
                           correlation_id: str | None = None) -> Receipt:
        """Send a message to an agent id, ``role:<name>`` or ``human``; returns its ``queued`` receipt.

        The agent processes it as a turn in arrival order; its reply is published back to the
        sender. Follow the receipt with ``get_receipt`` (queued → delivered → processed | failed).

        Raises:
            ValidationFailed: bad fields, or no recipient (post to rooms with ``post_to_room``).
            AgentNotFound: unknown agent or empty role.
        """
        if recipient is None:
            raise ValidationFailed("recipient is required; to post to a room use post_to_room(room, ...)",
                                   field="recipient")
        sent = await self.messenger.send(sender, recipient, content, channel=channel, message_type=message_type,
                                         metadata=metadata, correlation_id=correlation_id)
        return sent.receipt

    async def ask(self, sender: str, recipient: str, content: str, *, channel: str | None = None,
                  timeout: float | None = None, metadata: Mapping[str, Any] | None = None,
                  context: Mapping[str, Any] | None = None) -> Answer:
        """Send to an agent id or ``role:<name>`` (with its fallbacks) and wait for the answer."""
        request = Request(text=content, sender=sender, channel=channel, timeout=timeout,
                          metadata=dict(metadata or {}), context=context)
        return await self.coordinator.target_for(recipient).run(request)

    async def get_receipt(self, message_id: str, recipient: str | None = None) -> Receipt:
        return await self.inbox.get_receipt(message_id, recipient)

    async def wait_receipt(self, message_id: str, recipient: str | None = None, *,
                           timeout: float | None = None) -> Receipt:
        """Wait until a message's receipt is final (or ``timeout`` seconds pass) and return it."""
        return await self.inbox.wait_receipt(message_id, recipient, timeout=timeout)

    async def list_receipts(self, *, sender: str | None = None, recipient: str | None = None,
                            message_id: str | None = None, status: str | None = None, since_seq: int = 0,
                            limit: int = 100) -> list[Receipt]:
        return await self.inbox.list_receipts(sender=sender, recipient=recipient, message_id=message_id,
                                              status=status, since_seq=since_seq, limit=limit)

    async def get_message(self, message_id: str) -> Envelope:
        """One envelope of this tenant by id. Raises MessageNotFound."""
        env = await self.bus.get(message_id)
        if env.tenant_id != self.tenant_id:
            raise MessageNotFound(f"no message {message_id!r}", field="message_id")
        return env

    async def list_messages(self, *, agent_id: str | None = None, sender: str | None = None,
                            recipient: str | None = None, channel: str | None = None,
                            message_type: str | None = None, since_seq: int = 0, limit: int = 100) -> list[Envelope]:
        """Bus envelopes (messages, replies, events) after ``since_seq`` matching every filter given."""
        flt = EnvelopeFilter.of(agent_id=agent_id, sender=sender, recipient=recipient, channel=channel,
                                message_type=message_type, tenant_id=self.tenant_id)
        return await self.bus.replay(flt, since_seq=since_seq, limit=limit)

    def subscribe(self, *, agent_id: str | None = None, sender: str | None = None, recipient: str | None = None,
                  channel: str | None = None, message_type: str | None = None, since_seq: int | None = None,
                  max_queue: int | None = None, policy: OverflowPolicy = "drop_oldest") -> Subscription:
        """A live stream of matching envelopes (after replaying those with seq > ``since_seq``)."""
        flt = EnvelopeFilter.of(agent_id=agent_id, sender=sender, recipient=recipient, channel=channel,
                                message_type=message_type, tenant_id=self.tenant_id)
        return self.bus.subscribe(flt, since_seq=since_seq, max_queue=max_queue, policy=policy)

    def bus_stats(self) -> dict[str, Any]:
        return {**self.bus.stats(), **self.inbox.stats()}

    # Rooms -----------------------------------------------------------------------------------

    async def create_room(self, name: str, *, members: Iterable[str] = (), created_by: str | None = None,
                          metadata: Mapping[str, Any] | None = None) -> Room:
        return await self.rooms.create(name, members=members, created_by=created_by, metadata=metadata)

    async def join_room(self, name: str, agent_id: str) -> Room:
        return await self.rooms.join(name, agent_id)

    async def leave_room(self, name: str, agent_id: str) -> Room:
        return await self.rooms.leave(name, agent_id)

    def get_room(self, name: str) -> Room:
        return self.rooms.get(name)

    def list_rooms(self, *, member: str | None = None) -> list[Room]:
        return self.rooms.all(member=member)

    async def post_to_room(self, room: str, sender: str, content: str, *, message_type: str = "message",
                           metadata: Mapping[str, Any] | None = None) -> RoomPost:
        """Post to a room: every member but the sender processes it; replies go to the room."""
        env, deliveries = await self.rooms.post(room, sender, content, message_type=message_type,
                                                metadata=metadata)
        return RoomPost(envelope=env, receipts=tuple(self.inbox.current(d.key) for d in deliveries))

    async def room_history(self, room: str, *, since_seq: int = 0, limit: int = 100,
                           message_type: str | None = None) -> list[Envelope]:
        return await self.rooms.history(room, since_seq=since_seq, limit=limit, message_type=message_type)

    # Coordination ----------------------------------------------------------------------------

    async def assign_role(self, role: str, agent_ids: Iterable[str]) -> list[str]:
        """Make these agents the ones that fill ``role`` (used by ``run_task(agent_role=...)`` too)."""
        return await self.coordinator.assign_role(role, agent_ids)

    async def unassign_role(self, role: str, agent_id: str | None = None) -> list[str]:
        return await self.coordinator.unassign(role, agent_id)

    def roles(self) -> dict[str, list[str]]:
        return self.coordinator.roles()

    async def round_robin(self, role: str, text: str, **options: Any) -> Answer:
        return await self.coordinator.round_robin(role, text, **options)

    async def role_chain(self, roles: Sequence[str], text: str, **options: Any) -> Lineage:
        return await self.coordinator.role_chain(roles, text, **options)

    async def broadcast(self, text: str, **options: Any) -> list[Answer]:
        return await self.coordinator.broadcast(text, **options)

    def set_fallback(self, address: str, *fallbacks: str | LiteFn | Target, timeout: float | None = None) -> None:
        self.coordinator.set_fallback(address, *fallbacks, timeout=timeout)

    async def set_routes(self, rules: Sequence[RouteRule | Mapping[str, Any]], *,
                         default: Sequence[str] = ()) -> Router:
        return await self.coordinator.set_routes(rules, default=default)

    async def route(self, text: str, **options: Any) -> RouteResult:
        return await self.coordinator.route(text, **options)

    # Sub-agents ------------------------------------------------------------------------------

    async def spawn_agent(self, parent_id: str, child_id: str | None = None, **overrides: Any) -> AgentSpec:
        """Create a sub-agent (see ``SubAgents.spawn`` for the overrides)."""
        return await self.subagents.spawn(parent_id, child_id, **overrides)

    def list_subagents(self, parent_id: str) -> list[AgentSpec]:
        return self.subagents.children(parent_id)

    async def delegate(self, parent_id: str, child_id: str, task: str, **options: Any) -> DelegationResult:
        return await self.subagents.delegate(parent_id, child_id, task, **options)

    async def delegation_result(self, task_id: str, timeout: float | None = None) -> DelegationResult:
        return await self.subagents.result(task_id, timeout)

    async def collect_delegations(self, task_ids: Sequence[str], timeout: float | None = None,
                                  ) -> list[DelegationResult]:
        return await self.subagents.collect(task_ids, timeout)

    async def cancel_subagent(self, child_id: str) -> list[str]:
        return await self.subagents.cancel(child_id)

    def agent_usage(self, agent_id: str) -> AgentUsage:
        """Tokens and turns this agent has used (its own; a sub-agent's are not its parent's)."""
        return self.usage.for_agent(agent_id)
