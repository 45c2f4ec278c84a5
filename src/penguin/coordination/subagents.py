"""Sub-agents: spawn children of an agent, delegate work to them, get the results back.

A child is an ordinary agent whose ``parent_id`` is set. It inherits the parent's system prompt,
tool policy, model, model parameters and metadata unless the spawn call overrides them, and its
context window is clamped to a token budget: ``context_tokens`` is at most the parent's (or the
core default), never more.

Sessions (decided): a child never writes into its parent's conversation. Penguin runs one
writer per conversation, and a parent that delegates from inside its own turn holds its
conversation's writer slot, so a child turn there would wait for the parent that waits for the
child. Instead ``share_session=True`` gives the child a snapshot of the parent's recent history
(user and assistant messages, newest first, within half of the child's token budget) as
request context at each delegation; ``share_session=False`` (default) gives it only its own,
fresh conversation. Either way the child's history, task state and token usage are its own.

Delegation runs the work as a task of the child (``PenguinCore.run_task``): wait for it with a
timeout, or take the task id and ``collect`` later. The task's transitions and every turn of
the child are published on the bus (channel ``agent:<child>``); when a delegated task ends, a
``delegation`` envelope from the child to the parent carries the result, status and usage.
Pause and resume gate the child's next turn; ``cancel`` cancels its delegated tasks and any
in-flight turn, so nothing keeps running.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from penguin.agents.spec import AgentSpec, ToolPolicy
from penguin.bus.envelope import Envelope, IdFactory
from penguin.bus.memory import MemoryBus
from penguin.conversations.context import MODEL_VISIBLE, estimate_tokens
from penguin.coordination.usage import AgentUsage, UsageLedger
from penguin.engine.tasks import Task, TaskStatus
from penguin.errors import Conflict, ValidationFailed
from penguin.naming import new_id, validate_agent_id

if TYPE_CHECKING:
    from penguin.core import PenguinCore

_KEEP = 10_000


@dataclass(slots=True, kw_only=True)
class DelegationResult:
    """Where a delegated task stands, or how it ended."""

    task_id: str
    parent_id: str
    child_id: str
    #: The task status: ``queued``, ``running``, ``completed``, ``failed`` or ``cancelled``.
    status: str
    result: str | None = None
    error: dict[str, Any] | None = None
    #: The child's token usage for this task alone.
    usage: AgentUsage
    #: True when the wait ended before the task did.
    timed_out: bool = False

    @property
    def finished(self) -> bool:
        return TaskStatus(self.status).finished

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id, "parent_id": self.parent_id, "child_id": self.child_id,
            "status": self.status, "result": self.result, "error": self.error,
            "usage": self.usage.to_dict(), "timed_out": self.timed_out,
        }


@dataclass(frozen=True, slots=True)
class _Delegation:
    parent_id: str
    child_id: str
    message_id: str


class SubAgents:
    """Spawns children and tracks the work delegated to them."""

    def __init__(self, core: PenguinCore, *, bus: MemoryBus, usage: UsageLedger, tenant_id: str) -> None:
        self._core = core
        self._bus = bus
        self._usage = usage
        self._tenant = tenant_id
        self._ids = IdFactory("msg")
        self._delegations: OrderedDict[str, _Delegation] = OrderedDict()

    async def spawn(
        self,
        parent_id: str,
        child_id: str | None = None,
        *,
        system_prompt: str | None = None,
        model: str | None = None,
        model_parameters: Mapping[str, Any] | None = None,
        tool_policy: ToolPolicy | Mapping[str, Any] | None = None,
        roles: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        share_session: bool = False,
        context_tokens: int | None = None,
    ) -> AgentSpec:
        """Create a child of ``parent_id`` (id generated when not given).

        Raises:
            AgentNotFound: no such parent.
            AgentExists: the child id is taken.
            ValidationFailed: a bad override.
        """
        parent = self._core.get_agent(parent_id)
        if not isinstance(share_session, bool):
            raise ValidationFailed("share_session must be true or false", field="share_session")
        child_id = validate_agent_id(child_id) if child_id is not None else (
            f"{parent.agent_id[:36]}-sub-{new_id('x')[-12:]}"
        )
        ceiling = parent.context_tokens or self._core.settings.context_tokens
        if context_tokens is not None and (isinstance(context_tokens, bool) or not isinstance(context_tokens, int)):
            raise ValidationFailed("context_tokens must be an integer", field="context_tokens")
        budget = min(context_tokens or ceiling, ceiling)
        info = {"parent_id": parent.agent_id, "share_session": share_session, "context_tokens": budget}
        return await self._core.create_agent(
            child_id,
            system_prompt=parent.system_prompt if system_prompt is None else system_prompt,
            model=parent.model if model is None else model,
            model_parameters=dict(parent.model_parameters if model_parameters is None else model_parameters),
            tool_policy=parent.tool_policy if tool_policy is None else tool_policy,
            roles=list(roles),
            metadata={**parent.metadata, **(metadata or {}), "subagent": info},
            context_tokens=budget,
            parent_id=parent.agent_id,
        )

    def children(self, parent_id: str) -> list[AgentSpec]:
        return self._core.agents.list(parent_id=self._core.get_agent(parent_id).agent_id)

    async def delegate(
        self,
        parent_id: str,
        child_id: str,
        task: str,
        *,
        wait: bool = True,
        timeout: float | None = None,
        max_iterations: int = 5,
        context: Mapping[str, Any] | None = None,
    ) -> DelegationResult:
        """Give ``task`` to a child; wait for the result (up to ``timeout``) or return at once.

        Raises:
            AgentNotFound: no such parent or child.
            Conflict: ``child_id`` is not a child of ``parent_id``.
            ValidationFailed: empty task or bad bounds.
        """
        parent = self._core.get_agent(parent_id)
        child = self._core.get_agent(child_id)
        if child.parent_id != parent.agent_id:
            raise Conflict(f"{child_id!r} is not a sub-agent of {parent_id!r}; spawn it first (spawn_agent)",
                           field="child_id")
        ctx = dict(context or {})
        if child.metadata.get("subagent", {}).get("share_session"):
            budget = (child.context_tokens or self._core.settings.context_tokens) // 2
            ctx["parent_session"] = await self._parent_excerpt(parent.agent_id, budget)
        created = await self._core.run_task(task, agent_id=child.agent_id, max_iterations=max_iterations,
                                            context=ctx or None)
        message = await self._bus.publish(Envelope(
            id=self._ids(), sender=parent.agent_id, recipient=child.agent_id, channel=f"agent:{child.agent_id}",
            message_type="delegation", content=task, metadata={"task_id": created.id},
            tenant_id=self._tenant, correlation_id=created.id,
        ))
        self._delegations[created.id] = _Delegation(parent.agent_id, child.agent_id, message.id)
        while len(self._delegations) > _KEEP:
            self._delegations.popitem(last=False)
        if not wait:
            return self._result(created, timed_out=False)
        return await self.result(created.id, timeout)

    async def result(self, task_id: str, timeout: float | None = None) -> DelegationResult:
        """Wait up to ``timeout`` seconds for a delegated task and report it."""
        task = await self._core.wait_task(task_id, timeout)
        return self._result(task, timed_out=not task.status.finished)

    async def collect(self, task_ids: Sequence[str], timeout: float | None = None) -> list[DelegationResult]:
        """Results of several delegations, in the given order (each waited for up to ``timeout``)."""
        return list(await asyncio.gather(*(self.result(t, timeout) for t in task_ids)))

    async def cancel(self, child_id: str) -> list[str]:
        """Cancel a child's unfinished delegated tasks and any in-flight turn; returns the task ids."""
        child = self._core.get_agent(child_id)
        cancelled = []
        for task_id, info in list(self._delegations.items()):
            if info.child_id != child.agent_id:
                continue
            task = await self._core.get_task(task_id)
            if not task.status.finished:
                await self._core.cancel_task(task_id)
                cancelled.append(task_id)
        self._core.cancel(child.agent_id)
        return cancelled

    async def task_changed(self, task: Task) -> None:
        """Hand a finished delegated task's result back to the parent (a ``delegation`` envelope)."""
        info = self._delegations.get(task.id)
        if info is None or not task.status.finished:
            return
        result = self._result(task, timed_out=False)
        await self._bus.publish(Envelope(
            id=self._ids(), sender=info.child_id, recipient=info.parent_id, channel=f"agent:{info.parent_id}",
            message_type="delegation", content=task.result or f"task {task.status.value}",
            metadata=result.to_dict(), tenant_id=self._tenant, correlation_id=task.id,
            causation_id=info.message_id,
        ))

    def _result(self, task: Task, *, timed_out: bool) -> DelegationResult:
        info = self._delegations.get(task.id)
        return DelegationResult(
            task_id=task.id,
            parent_id=info.parent_id if info is not None else "",
            child_id=task.agent_id,
            status=task.status.value,
            result=task.result,
            error=task.error,
            usage=self._usage.for_task(task.id),
            timed_out=timed_out,
        )

    async def _parent_excerpt(self, parent_id: str, budget_tokens: int) -> list[dict[str, str]]:
        conversations = self._core.conversations
        history = await conversations.messages((await conversations.default_for(parent_id)).id)
        picked: list[dict[str, str]] = []
        remaining = budget_tokens
        for message in reversed(history):
            if message.message_type not in MODEL_VISIBLE or message.role not in ("user", "assistant"):
                continue
            if not message.content:
                continue
            cost = estimate_tokens(message)
            if cost > remaining:
                break
            remaining -= cost
            picked.append({"role": message.role, "sender": message.sender, "content": message.content})
        picked.reverse()
        return picked
