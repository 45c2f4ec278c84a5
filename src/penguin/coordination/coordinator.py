"""``MultiAgentCoordinator``: role assignments and the multi-agent patterns built on them.

Roles are assigned up front (role → agent ids, persisted in the ``kv`` table, namespace
``roles``); ``PenguinCore.agent_for_role`` (and so ``run_task(agent_role=...)`` and RunMode)
asks ``pick`` first, which rotates fairly over the assigned agents (cursor persisted,
namespace ``round_robin``), skipping paused ones while an unpaused one exists. Roles with no
assignment fall back to the agents whose ``AgentSpec.roles`` name the role.

Every pattern hands work to agents through their durable inboxes (``Messenger.ask``), so each
step has an envelope, a receipt and a real turn, and it forwards the real reply:

* ``round_robin(role, text)``: the next agent of the role answers.
* ``role_chain(roles, text)``: each role's agent answers in order; each reply is the next input;
  the ``Lineage`` holds every step (role, agent, input, output, usage).
* ``broadcast(text, roles=/agents=/room=)``: every target at once; one ``Answer`` each (a
  ``pending`` one carries its receipt when the wait ends first).
* ``route(text, ...)``: policy routing (``penguin.coordination.routing``) with fallback chains.

Lite-agent fallbacks (``set_fallback``) wrap the target of an agent id or a role; they are kept
in memory because they may be Python callables: register them at startup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from penguin.agents.registry import AgentRegistry
from penguin.agents.spec import AgentSpec
from penguin.bus.inbox import Inbox
from penguin.bus.kv import KVStore
from penguin.bus.rooms import Rooms
from penguin.coordination.fallback import DEFAULT_ON, FallbackTarget
from penguin.coordination.messenger import Messenger, answer_from
from penguin.coordination.routing import Router, RouteRule, check_target
from penguin.coordination.targets import AgentTarget, Answer, CallableTarget, LiteFn, MissingTarget, Request, Target
from penguin.errors import AgentNotFound, PenguinError, ValidationFailed
from penguin.models.base import Usage
from penguin.naming import validate_agent_id

ROLES = "roles"
CURSORS = "round_robin"
ROUTING = "routing"


@dataclass(slots=True, kw_only=True)
class ChainStep:
    """One hop of a role chain: who answered what."""

    role: str
    agent_id: str | None
    input: str
    output: str | None
    usage: Usage = field(default_factory=Usage)
    status: str = "processed"
    message_id: str | None = None
    reply_id: str | None = None
    fallback_used: bool = False
    error: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role, "agent_id": self.agent_id, "input": self.input, "output": self.output,
            "usage": self.usage.to_dict(), "status": self.status, "message_id": self.message_id,
            "reply_id": self.reply_id, "fallback_used": self.fallback_used, "error": self.error,
        }


@dataclass(slots=True, kw_only=True)
class Lineage:
    """The whole record of a role chain, in order."""

    correlation_id: str
    steps: list[ChainStep] = field(default_factory=list)
    status: Literal["completed", "failed"] = "completed"

    @property
    def output(self) -> str | None:
        return self.steps[-1].output if self.steps else None

    def to_dict(self) -> dict[str, Any]:
        return {"correlation_id": self.correlation_id, "status": self.status, "output": self.output,
                "steps": [s.to_dict() for s in self.steps]}


@dataclass(slots=True, kw_only=True)
class RouteResult:
    #: The rule that matched (None: the default chain).
    rule: str | None
    chain: tuple[str, ...]
    answer: Answer

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "chain": list(self.chain), "answer": self.answer.to_dict()}


@dataclass(frozen=True, slots=True)
class _Fallback:
    targets: tuple[Target, ...]
    timeout: float | None
    on: tuple[type[PenguinError], ...]


class _RoleTarget:
    """The next agent of a role (round-robin), resolved when the request runs."""

    def __init__(self, coordinator: MultiAgentCoordinator, role: str) -> None:
        self._coordinator = coordinator
        self._role = role

    @property
    def name(self) -> str:
        return f"role:{self._role}"

    async def run(self, request: Request) -> Answer:
        agent_id = self._coordinator.next_agent(self._role)
        if agent_id is None:
            missing = AgentNotFound(f"no agent fills the role {self._role!r}; assign one (assign_role)",
                                    field="role")
            return await MissingTarget(self.name, missing).run(request)
        return await self._coordinator.target_for(agent_id).run(request)


class MultiAgentCoordinator:
    def __init__(self, *, kv: KVStore, agents: AgentRegistry, messenger: Messenger, inbox: Inbox,
                 rooms: Rooms) -> None:
        self._kv = kv
        self._agents = agents
        self._messenger = messenger
        self._inbox = inbox
        self._rooms = rooms
        self._roles: dict[str, list[str]] = {}
        self._cursors: dict[str, int] = {}
        self._fallbacks: dict[str, _Fallback] = {}
        self._router = Router()

    async def load(self) -> None:
        self._roles = {k: list(v) for k, v in (await self._kv.load(ROLES)).items()}
        self._cursors = {k: int(v) for k, v in (await self._kv.load(CURSORS)).items()}
        stored = (await self._kv.load(ROUTING)).get("router")
        self._router = Router.restore(stored) if stored else Router()

    # Roles -----------------------------------------------------------------------------------

    async def assign_role(self, role: str, agent_ids: Iterable[str]) -> list[str]:
        """Make ``agent_ids`` (in this order) the agents of ``role``, replacing earlier ones.

        Raises:
            InvalidAgentId: a bad role name or agent id.
            AgentNotFound: an agent does not exist.
        """
        validate_agent_id(role, field="role")
        ids = list(dict.fromkeys(agent_ids))
        for agent_id in ids:
            if self._agents.find(validate_agent_id(agent_id)) is None:
                raise AgentNotFound(f"no agent {agent_id!r}; create it before assigning it a role", field="agent_ids")
        if ids:
            self._roles[role] = ids
            self._kv.put(ROLES, role, ids)
        else:
            self._roles.pop(role, None)
            self._kv.delete(ROLES, role)
        await self._kv.commit()
        return ids

    async def unassign(self, role: str, agent_id: str | None = None) -> list[str]:
        """Remove one agent from a role (or every agent); returns who is left."""
        current = self._roles.get(validate_agent_id(role, field="role"), [])
        return await self.assign_role(role, [a for a in current if agent_id is not None and a != agent_id])

    async def forget_agent(self, agent_id: str) -> None:
        """Drop a removed agent from every role."""
        for role, ids in list(self._roles.items()):
            if agent_id in ids:
                await self.assign_role(role, [a for a in ids if a != agent_id])

    def roles(self) -> dict[str, list[str]]:
        """Explicit assignments, role → agent ids."""
        return {k: list(v) for k, v in sorted(self._roles.items())}

    def candidates(self, role: str) -> list[str]:
        """Agents of a role: the assignment, else agents whose spec lists the role."""
        assigned = [a for a in self._roles.get(role, ()) if self._agents.find(a) is not None]
        return assigned or [s.agent_id for s in self._agents.list(role=role)]

    def pick(self, role: str) -> AgentSpec | None:
        """The next assigned agent of ``role`` (None when the role has no assignment)."""
        assigned = [a for a in self._roles.get(role, ()) if self._agents.find(a) is not None]
        return self._agents.get(self._rotate(role, assigned)) if assigned else None

    def next_agent(self, role: str) -> str | None:
        """The next agent of ``role`` among its candidates (None when there is none)."""
        found = self.candidates(role)
        return self._rotate(role, found) if found else None

    def resolve_role(self, role: str) -> str:
        """``role:<name>`` addressing: the next agent of the role.

        Raises:
            AgentNotFound: nobody fills it.
        """
        validate_agent_id(role, field="recipient")
        agent_id = self.next_agent(role)
        if agent_id is None:
            raise AgentNotFound(f"no agent fills the role {role!r}; assign one (assign_role)", field="recipient")
        return agent_id

    def _rotate(self, role: str, ids: Sequence[str]) -> str:
        count = len(ids)
        start = self._cursors.get(role, 0) % count
        chosen = start
        for step in range(count):
            spec = self._agents.find(ids[(start + step) % count])
            if spec is not None and not spec.paused:
                chosen = (start + step) % count
                break
        self._cursors[role] = chosen + 1
        self._kv.put(CURSORS, role, chosen + 1)
        return ids[chosen]

    # Targets and fallbacks -------------------------------------------------------------------

    def set_fallback(self, address: str, *fallbacks: str | LiteFn | Target, timeout: float | None = None,
                     on: tuple[type[PenguinError], ...] = DEFAULT_ON) -> None:
        """Wrap ``address`` (an agent id or ``role:<name>``) with lite-agent fallbacks.

        Each fallback is an agent id, ``role:<name>``, a plain function (text → text) or a
        ``Target``. With none given, the address's fallbacks are removed.
        """
        check_target(address, "address")
        if not fallbacks:
            self._fallbacks.pop(address, None)
            return
        if timeout is not None and timeout <= 0:
            raise ValidationFailed("timeout must be positive", field="timeout")
        targets = tuple(self._as_target(f) for f in fallbacks)
        self._fallbacks[address] = _Fallback(targets, timeout, on)

    def _as_target(self, value: str | LiteFn | Target) -> Target:
        if isinstance(value, str):
            return self._base(check_target(value, "fallbacks"))
        if hasattr(value, "run") and hasattr(value, "name"):
            return value
        return CallableTarget(value)

    def _base(self, address: str) -> Target:
        if address.startswith("role:"):
            return _RoleTarget(self, address[5:])
        return AgentTarget(address, self._messenger.ask)

    def target_for(self, address: str) -> Target:
        """The target for an agent id or ``role:<name>``, wrapped in its fallbacks if any."""
        base = self._base(check_target(address, "address"))
        fb = self._fallbacks.get(address)
        if fb is None:
            return base
        return FallbackTarget(base, *fb.targets, timeout=fb.timeout, on=fb.on)

    # Patterns --------------------------------------------------------------------------------

    async def round_robin(self, role: str, text: str, *, sender: str = "human", timeout: float | None = None,
                          metadata: Mapping[str, Any] | None = None,
                          context: Mapping[str, Any] | None = None) -> Answer:
        """Send ``text`` to the role's next agent and return its answer."""
        validate_agent_id(role, field="role")
        request = Request(text=text, sender=sender, timeout=timeout, metadata=dict(metadata or {}),
                          context=context, correlation_id=self._messenger.new_id())
        return await self.target_for(f"role:{role}").run(request)

    async def role_chain(self, roles: Sequence[str], text: str, *, sender: str = "human",
                         timeout: float | None = None, context: Mapping[str, Any] | None = None) -> Lineage:
        """Run each role's agent in order, feeding each real reply to the next.

        Stops at the first step that does not answer; the lineage then ends with that step.
        """
        if isinstance(roles, str) or not roles:
            raise ValidationFailed("roles must be a non-empty list of role names", field="roles")
        for role in roles:
            validate_agent_id(role, field="roles")
        lineage = Lineage(correlation_id=self._messenger.new_id())
        current, current_sender = text, sender
        for index, role in enumerate(roles):
            request = Request(text=current, sender=current_sender, timeout=timeout, context=context,
                              correlation_id=lineage.correlation_id,
                              metadata={"chain": lineage.correlation_id, "step": index, "role": role})
            answer = await self.target_for(f"role:{role}").run(request)
            lineage.steps.append(ChainStep(
                role=role, agent_id=answer.agent_id, input=current, output=answer.text, usage=answer.usage,
                status=answer.status, message_id=answer.message_id, reply_id=answer.reply_id,
                fallback_used=answer.fallback_used,
                error=answer.error.to_problem() if answer.error is not None else None,
            ))
            if not answer.ok or answer.text is None:
                lineage.status = "failed"
                return lineage
            current, current_sender = answer.text, answer.agent_id or sender
        return lineage

    async def broadcast(self, text: str, *, roles: Sequence[str] = (), agents: Sequence[str] = (),
                        room: str | None = None, sender: str = "human",
                        timeout: float | None = None) -> list[Answer]:
        """Send ``text`` to every agent of ``roles`` and ``agents``, or to a room, at once.

        Returns one answer per target, in target order; when ``timeout`` ends the wait first, a
        target's answer is ``pending`` with its current receipt (the message stays queued).
        """
        correlation = self._messenger.new_id()
        if room is not None:
            if roles or agents:
                raise ValidationFailed("broadcast to a room, or to roles/agents, not both", field="room")
            env, deliveries = await self._rooms.post(room, sender, text, correlation_id=correlation)
            outcomes = await asyncio.gather(*(self._inbox.wait(d, timeout) for d in deliveries))
            return [answer_from(d.recipient, env.id, o) for d, o in zip(deliveries, outcomes, strict=True)]
        targets: dict[str, None] = {}
        for role in roles:
            found = self.candidates(validate_agent_id(role, field="roles"))
            if not found:
                raise AgentNotFound(f"no agent fills the role {role!r}; assign one (assign_role)", field="roles")
            targets.update(dict.fromkeys(found))
        for agent_id in agents:
            targets[check_target(agent_id, "agents")] = None
        if not targets:
            raise ValidationFailed("broadcast needs roles, agents or a room", field="roles")
        request = Request(text=text, sender=sender, timeout=timeout, correlation_id=correlation)
        return list(await asyncio.gather(*(self.target_for(t).run(request) for t in targets)))

    # Policy routing --------------------------------------------------------------------------

    async def set_routes(self, rules: Sequence[RouteRule | Mapping[str, Any]], *,
                         default: Sequence[str] = ()) -> Router:
        """Replace the routing rules (ordered) and the default chain; persisted.

        Raises:
            ValidationFailed: a rule is malformed; ``field`` names it as ``rules.<index>.<field>``.
        """
        built = []
        for index, rule in enumerate(rules):
            try:
                built.append(rule if isinstance(rule, RouteRule) else RouteRule.from_dict(rule))
            except ValidationFailed as exc:
                field = f"rules.{index}" if exc.field in (None, "rules") else f"rules.{index}.{exc.field}"
                raise ValidationFailed(exc.detail, field=field) from None
        self._router = Router(built, default=default)
        self._kv.put(ROUTING, "router", self._router.to_dict())
        await self._kv.commit()
        return self._router

    @property
    def router(self) -> Router:
        return self._router

    async def route(self, text: str, *, sender: str = "human", metadata: Mapping[str, Any] | None = None,
                    context: Mapping[str, Any] | None = None, timeout: float | None = None) -> RouteResult:
        """Pick the target by the first matching rule and ask it, falling back along its chain.

        Raises:
            AgentNotFound: no rule matched and there is no default chain.
        """
        rule, chain = await self._router.aselect(text, metadata, context)
        if not chain:
            raise AgentNotFound("no routing rule matched and no default target is set (set_routes)",
                                field="rules")
        primary, *rest = [self.target_for(t) for t in chain]
        target = FallbackTarget(primary, *rest, timeout=timeout if rest else None) if rest else primary
        request = Request(text=text, sender=sender, metadata={**(metadata or {}), "route": rule},
                          context=context, timeout=timeout, correlation_id=self._messenger.new_id())
        return RouteResult(rule=rule, chain=chain, answer=await target.run(request))
