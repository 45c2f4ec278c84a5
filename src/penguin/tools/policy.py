"""``ToolPolicyEnforcer``: an agent's ``ToolPolicy`` applied around every tool call.

Policy wraps; it does not branch. Each limit is a small guard, an async context manager that
admits a call or raises ``ToolDenied``; the enforcer nests them around the tool's own invocation
and a timeout::

    RateLimit ─▶ TaskQuota ─▶ ApprovalGate ─▶ ConcurrencyLimit ─▶ timeout(tool call)

Cheap refusals come first, so a throttled call never bothers a reviewer, and a call waiting for
approval does not hold a concurrency slot. A guard that counted a call refunds it when a guard
inside it refuses that call, so an approval denial does not eat the rate or the task quota;
a call that was admitted and then failed or timed out has been made, and stays counted.

Every outcome is counted per agent, tool and reason (``stats()``). Denial reasons are stable
slugs: ``not_enabled``, ``rate_limit``, ``tool_rate_limit``, ``quota``, ``tool_quota``,
``approval_denied``, ``approval_timeout``, ``sandbox``.
"""

from __future__ import annotations

import asyncio
import fnmatch
import time
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from penguin.agents.spec import AgentSpec, ToolPolicy
from penguin.errors import ToolDenied, ToolError
from penguin.tools.approvals import ApprovalBroker, ApprovalState
from penguin.tools.base import ToolContext

T = TypeVar("T")
Clock = Callable[[], float]

#: Seconds of the sliding rate window.
WINDOW_SECONDS = 60.0
#: Tasks whose quota counters are kept (least recently used dropped first).
MAX_TRACKED_TASKS = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallInfo:
    """What a guard knows about the call it admits."""

    spec: AgentSpec
    ctx: ToolContext
    tool: str
    #: The raw JSON arguments (shown to approvers).
    arguments: str

    @property
    def policy(self) -> ToolPolicy:
        return self.spec.tool_policy


class Guard(Protocol):
    """Admits a call for the duration of the ``async with``, or raises ``ToolDenied``."""

    def admit(self, call: ToolCallInfo) -> AbstractAsyncContextManager[None]: ...


def _matching(name: str, limits: Mapping[str, int]) -> int | None:
    """The tightest limit among globs matching ``name`` (None when none match)."""
    found = [limit for glob, limit in limits.items() if fnmatch.fnmatchcase(name, glob)]
    return min(found) if found else None


class RateLimit:
    """Sliding one-minute windows: per agent (``rate_per_minute``) and per agent and tool name."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[tuple[str, str], deque[float]] = {}

    def _window(self, key: tuple[str, str], now: float) -> deque[float]:
        window = self._windows.setdefault(key, deque())
        while window and window[0] <= now - WINDOW_SECONDS:
            window.popleft()
        return window

    @asynccontextmanager
    async def admit(self, call: ToolCallInfo) -> AsyncIterator[None]:
        agent = call.spec.agent_id
        checks: list[tuple[tuple[str, str], int, str, str]] = []
        if call.policy.rate_per_minute is not None:
            checks.append(((agent, ""), call.policy.rate_per_minute, "rate_limit", f"agent {agent!r}"))
        per_tool = _matching(call.tool, call.policy.tool_rate_per_minute)
        if per_tool is not None:
            checks.append(((agent, call.tool), per_tool, "tool_rate_limit", f"tool {call.tool!r} of {agent!r}"))
        now = self._clock()
        windows = [(self._window(key, now), limit, reason, who) for key, limit, reason, who in checks]
        for window, limit, reason, who in windows:
            if len(window) >= limit:
                retry = (window[0] + WINDOW_SECONDS - now) if window else WINDOW_SECONDS
                raise ToolDenied(
                    f"rate limit: {who} may make {limit} tool call(s) per minute; retry in {retry:.1f}s",
                    reason=reason, retry_after=round(retry, 3),
                )
        for window, *_ in windows:
            window.append(now)
        try:
            yield
        except ToolDenied:
            for window, *_ in windows:
                window.remove(now)
            raise


class TaskQuota:
    """Calls per task (``ToolContext.task_id``): for the agent as a whole and per tool name."""

    def __init__(self) -> None:
        self._used: OrderedDict[tuple[str, str], Counter[str]] = OrderedDict()

    def used(self, agent_id: str, task_id: str) -> dict[str, int]:
        """Calls counted so far in one task: ``"*"`` for the total, then per tool."""
        return dict(self._used.get((agent_id, task_id), Counter()))

    @asynccontextmanager
    async def admit(self, call: ToolCallInfo) -> AsyncIterator[None]:
        task = call.ctx.task_id
        per_tool = _matching(call.tool, call.policy.tool_task_quota)
        if task is None or (call.policy.task_quota is None and per_tool is None):
            yield
            return
        key = (call.spec.agent_id, task)
        used = self._used.setdefault(key, Counter())
        self._used.move_to_end(key)
        while len(self._used) > MAX_TRACKED_TASKS:
            self._used.popitem(last=False)
        quota = call.policy.task_quota
        if quota is not None and used["*"] >= quota:
            raise ToolDenied(f"quota: task {task!r} has used all {quota} tool call(s) allowed to agent "
                             f"{call.spec.agent_id!r}; finish the task without tools", reason="quota")
        if per_tool is not None and used[call.tool] >= per_tool:
            raise ToolDenied(f"quota: task {task!r} has used all {per_tool} call(s) of {call.tool!r}; "
                             "use another tool or finish the task", reason="tool_quota")
        used["*"] += 1
        used[call.tool] += 1
        try:
            yield
        except ToolDenied:
            used["*"] -= 1
            used[call.tool] -= 1
            raise


class ApprovalGate:
    """Tools matched by ``require_approval`` wait for ``ApprovalBroker`` to approve them."""

    def __init__(self, broker: ApprovalBroker) -> None:
        self._broker = broker

    @asynccontextmanager
    async def admit(self, call: ToolCallInfo) -> AsyncIterator[None]:
        if not any(fnmatch.fnmatchcase(call.tool, glob) for glob in call.policy.require_approval):
            yield
            return
        req = await self._broker.request(
            agent_id=call.spec.agent_id, tool=call.tool, arguments=call.arguments,
            conversation_id=call.ctx.conversation_id, turn_id=call.ctx.turn_id, task_id=call.ctx.task_id,
            timeout=call.policy.approval_timeout,
        )
        if req.state is ApprovalState.EXPIRED:
            raise ToolDenied(f"approval: nobody approved {call.tool!r} within {req.timeout:g}s, so it was "
                             "denied; ask the user before trying again", reason="approval_timeout",
                             approval_id=req.id)
        if req.state is not ApprovalState.APPROVED:
            raise ToolDenied(f"approval: the call to {call.tool!r} was denied: {req.reason}",
                             reason="approval_denied", approval_id=req.id)
        yield


class ConcurrencyLimit:
    """At most ``max_concurrent`` calls of one agent run at once; others wait for a slot."""

    def __init__(self) -> None:
        self._slots: dict[str, tuple[int, asyncio.Semaphore]] = {}

    @asynccontextmanager
    async def admit(self, call: ToolCallInfo) -> AsyncIterator[None]:
        limit = call.policy.max_concurrent
        if limit is None:
            yield
            return
        agent = call.spec.agent_id
        held = self._slots.get(agent)
        if held is None or held[0] != limit:  # a changed policy gets a fresh semaphore
            held = (limit, asyncio.Semaphore(limit))
            self._slots[agent] = held
        async with held[1]:
            yield


class ToolPolicyEnforcer:
    """Runs tool calls inside an agent's policy and counts every outcome.

    Args:
        approvals: where approval-required calls wait (a fresh broker when omitted).
        clock: monotonic seconds, for the rate windows (injectable for tests).
    """

    def __init__(self, *, approvals: ApprovalBroker | None = None, clock: Clock = time.monotonic) -> None:
        self.approvals = approvals if approvals is not None else ApprovalBroker()
        self.quota = TaskQuota()
        self.guards: Sequence[Guard] = (
            RateLimit(clock), self.quota, ApprovalGate(self.approvals), ConcurrencyLimit()
        )
        self._counts: Counter[tuple[str, str, str, str]] = Counter()

    async def run(self, call: ToolCallInfo, invoke: Callable[[], Awaitable[T]]) -> T:
        """Admit ``call`` through every guard, then run ``invoke`` under the policy's timeout.

        Raises:
            ToolDenied: a guard (or the tool's sandbox) refused the call; counted with its reason.
            ToolError: the call timed out (``tool_policy.timeout``).
            Exception: whatever the tool raised (counted as an error).
        """
        try:
            async with AsyncExitStack() as stack:
                for guard in self.guards:
                    await stack.enter_async_context(guard.admit(call))
                self._count(call, "allowed")
                # The tool's own failure is carried out of the guards as a value: a ToolDenied from
                # the tool (a sandbox refusal) must not look like a guard refusal and be refunded.
                failure, value = await self._invoke(call, invoke)
        except ToolDenied as exc:
            self.count_denial(call.spec.agent_id, call.tool, str(exc.extra.get("reason", "denied")))
            raise
        if failure is None:
            return value  # type: ignore[return-value]  # set whenever failure is None
        if isinstance(failure, ToolDenied):
            self.count_denial(call.spec.agent_id, call.tool, str(failure.extra.get("reason", "denied")))
        elif isinstance(failure, ToolError) and failure.extra.get("reason") == "timeout":
            self._count(call, "timeout")
        else:
            self._count(call, "error")
        raise failure

    @staticmethod
    async def _invoke(call: ToolCallInfo, invoke: Callable[[], Awaitable[T]]) -> tuple[Exception | None, T | None]:
        timeout = call.policy.timeout
        try:
            async with asyncio.timeout(timeout) as scope:
                return None, await invoke()
        except TimeoutError as exc:
            if not scope.expired():
                return exc, None
            return ToolError(f"tool {call.tool!r} timed out after {timeout:g}s (tool_policy.timeout); "
                             "the call was abandoned", reason="timeout"), None
        except Exception as exc:
            return exc, None

    def count_denial(self, agent_id: str, tool: str, reason: str) -> None:
        """Record a denial decided outside the guards (e.g. a tool the agent may not use)."""
        self._counts[(agent_id, tool, "denied", reason)] += 1

    def count_error(self, agent_id: str, tool: str) -> None:
        """Record a call that failed before the guards (its arguments broke the tool's schema)."""
        self._counts[(agent_id, tool, "error", "")] += 1

    def _count(self, call: ToolCallInfo, outcome: str) -> None:
        self._counts[(call.spec.agent_id, call.tool, outcome, "")] += 1

    def stats(self, agent_id: str | None = None) -> dict[str, Any]:
        """Counts of allowed, denied (by reason), failed and timed-out calls, per agent and per tool.

        Shape: ``{"totals": {...}, "agents": {agent: {...totals, "tools": {tool: {...}}}},
        "pending_approvals": n}`` where each ``{...}`` is ``{"allowed", "denied", "errors",
        "timeouts", "denied_by_reason": {reason: n}}``.
        """
        totals = _blank()
        agents: dict[str, dict[str, Any]] = {}
        for (agent, tool, outcome, reason), n in sorted(self._counts.items()):
            if agent_id is not None and agent != agent_id:
                continue
            entry = agents.setdefault(agent, {**_blank(), "tools": {}})
            for bucket in (totals, entry, entry["tools"].setdefault(tool, _blank())):
                _add(bucket, outcome, reason, n)
        return {"totals": totals, "agents": agents, "pending_approvals": len(self.approvals.pending(agent_id))}


_KEYS = {"allowed": "allowed", "denied": "denied", "error": "errors", "timeout": "timeouts"}


def _blank() -> dict[str, Any]:
    return {"allowed": 0, "denied": 0, "errors": 0, "timeouts": 0, "denied_by_reason": {}}


def _add(bucket: dict[str, Any], outcome: str, reason: str, n: int) -> None:
    bucket[_KEYS[outcome]] += n
    if outcome == "denied":
        bucket["denied_by_reason"][reason] = bucket["denied_by_reason"].get(reason, 0) + n
