"""``ApprovalBroker``: tool calls that wait for a person (or a supervising agent) to say yes or no.

A call to a tool matched by ``ToolPolicy.require_approval`` files an ``ApprovalRequest`` here and
waits. Whoever watches ``pending()`` (the API, the console, a supervising agent) calls
``approve(id)`` or ``deny(id, reason)``; no answer within the policy's ``approval_timeout`` means
denied. Each request moves through explicit states, and every transition is checked::

    PENDING ──approve──▶ APPROVED
       │ ├────deny─────▶ DENIED
       │ └──timeout────▶ EXPIRED
       └───call gone───▶ CANCELLED   (the turn was cancelled while it waited)

Only the waiting call decides what happens to the tool; the broker just records decisions, so a
decision can never run a tool twice or after its turn is gone.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from penguin.errors import Conflict, NotFound
from penguin.naming import new_id

#: Decided requests kept for ``get`` (oldest dropped first).
KEEP_DECIDED = 1000


class ApprovalState(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(slots=True, kw_only=True)
class ApprovalRequest:
    """One tool call waiting for (or past) a decision."""

    id: str
    agent_id: str
    #: Tool name as the model called it.
    tool: str
    #: The call's raw JSON arguments, shown to the reviewer.
    arguments: str
    conversation_id: str
    turn_id: str
    task_id: str | None = None
    #: Seconds the call waits before it counts as denied.
    timeout: float
    state: ApprovalState = ApprovalState.PENDING
    #: The reviewer's reason for a denial (or why it expired).
    reason: str = ""
    created_at: float = field(default_factory=time.time)
    decided_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agent_id": self.agent_id,
            "tool": self.tool,
            "arguments": self.arguments,
            "conversation_id": self.conversation_id,
            "turn_id": self.turn_id,
            "task_id": self.task_id,
            "timeout": self.timeout,
            "state": self.state.value,
            "reason": self.reason,
            "created_at": self.created_at,
            "expires_at": self.created_at + self.timeout,
            "decided_at": self.decided_at,
        }


class ApprovalBroker:
    """Holds pending approval requests and the decisions made on them. One per ``PenguinCore``."""

    def __init__(self) -> None:
        self._pending: dict[str, tuple[ApprovalRequest, asyncio.Future[None]]] = {}
        self._decided: OrderedDict[str, ApprovalRequest] = OrderedDict()
        self._changed = asyncio.Event()

    async def request(
        self,
        *,
        agent_id: str,
        tool: str,
        arguments: str,
        conversation_id: str,
        turn_id: str,
        task_id: str | None = None,
        timeout: float,
    ) -> ApprovalRequest:
        """File a request and wait for its decision; returns it in its final state."""
        req = ApprovalRequest(
            id=new_id("appr"), agent_id=agent_id, tool=tool, arguments=arguments,
            conversation_id=conversation_id, turn_id=turn_id, task_id=task_id, timeout=timeout,
        )
        decided: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[req.id] = (req, decided)
        self._notify()
        try:
            await asyncio.wait_for(asyncio.shield(decided), timeout)
        except TimeoutError:
            if req.state is ApprovalState.PENDING:
                self._finish(req, ApprovalState.EXPIRED, f"no decision within {timeout:g}s")
        except asyncio.CancelledError:
            if req.state is ApprovalState.PENDING:
                self._finish(req, ApprovalState.CANCELLED, "the call was cancelled while waiting")
            raise
        return req

    def pending(self, agent_id: str | None = None) -> list[ApprovalRequest]:
        """Requests waiting for a decision, oldest first (optionally only one agent's)."""
        return [r for r, _ in self._pending.values() if agent_id is None or r.agent_id == agent_id]

    def get(self, approval_id: str) -> ApprovalRequest:
        """A pending or recently decided request.

        Raises:
            NotFound: no such request (or decided too long ago to be kept).
        """
        if approval_id in self._pending:
            return self._pending[approval_id][0]
        if approval_id in self._decided:
            return self._decided[approval_id]
        raise NotFound(f"no approval request {approval_id!r}; list pending ones with pending_approvals()",
                       field="approval_id")

    def approve(self, approval_id: str) -> ApprovalRequest:
        """Let the waiting call run.

        Raises:
            NotFound: unknown id.
            Conflict: the request was already decided (or expired).
        """
        return self._finish(self._waiting(approval_id), ApprovalState.APPROVED, "")

    def deny(self, approval_id: str, reason: str = "") -> ApprovalRequest:
        """Refuse the waiting call; ``reason`` is shown to the model.

        Raises:
            NotFound: unknown id.
            Conflict: the request was already decided (or expired).
        """
        return self._finish(self._waiting(approval_id), ApprovalState.DENIED, reason or "denied by reviewer")

    async def wait_for_pending(self, agent_id: str | None = None, *, timeout: float = 10.0) -> ApprovalRequest:
        """Wait until a request is pending (optionally for one agent) and return the oldest.

        Raises:
            TimeoutError: none arrived within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not (found := self.pending(agent_id)):
                self._changed.clear()
                await self._changed.wait()
        return found[0]

    def close(self) -> None:
        """Deny everything still pending (the core is stopping)."""
        for req, _ in list(self._pending.values()):
            self._finish(req, ApprovalState.DENIED, "Penguin is shutting down")

    def _waiting(self, approval_id: str) -> ApprovalRequest:
        req = self.get(approval_id)
        if req.state is not ApprovalState.PENDING:
            raise Conflict(f"approval {approval_id!r} is already {req.state.value}", field="approval_id")
        return req

    def _finish(self, req: ApprovalRequest, state: ApprovalState, reason: str) -> ApprovalRequest:
        if req.state is not ApprovalState.PENDING:
            raise Conflict(f"approval {req.id!r} is already {req.state.value}", field="approval_id")
        req.state = state
        req.reason = reason
        req.decided_at = time.time()
        _, decided = self._pending.pop(req.id)
        if not decided.done():
            decided.set_result(None)
        self._decided[req.id] = req
        while len(self._decided) > KEEP_DECIDED:
            self._decided.popitem(last=False)
        self._notify()
        return req

    def _notify(self) -> None:
        self._changed.set()
