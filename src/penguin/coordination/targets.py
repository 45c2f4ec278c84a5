"""Targets: the things a coordinator can hand a request to, behind one small protocol.

A ``Target`` answers a ``Request`` with an ``Answer``. ``AgentTarget`` sends the request through
the agent's durable inbox (so it gets a receipt, runs as a real turn, and its reply is
published); ``CallableTarget`` runs a plain Python function (a "lite agent" with no model);
``MissingTarget`` stands for "no agent is available" and always fails, so a fallback wrapped
around it engages. Fallback, routing and round-robin are wrappers over targets
(``penguin.coordination.fallback``), never flags inside them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from penguin.bus.receipts import Receipt
from penguin.errors import PenguinError, RuntimeFailure
from penguin.models.base import Usage

AnswerStatus = Literal["processed", "failed", "timeout", "pending"]
TimeoutAction = Literal["keep", "cancel"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What a target is asked to do."""

    text: str
    #: Who is asking: ``human``, an agent id (the previous step of a chain), ...
    sender: str = "human"
    channel: str | None = None
    message_type: str = "message"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    #: JSON context shown to the model with the message.
    context: Mapping[str, Any] | None = None
    #: Groups every message of one workflow (a chain, a broadcast, a route).
    correlation_id: str | None = None
    #: Seconds to wait for the answer (None = until it ends).
    timeout: float | None = None
    #: On timeout: ``keep`` leaves the message in the agent's inbox (the answer is ``pending``
    #: with its receipt); ``cancel`` stops it (dequeued, or its running turn cancelled).
    on_timeout: TimeoutAction = "keep"

    def with_(self, **changes: Any) -> Request:
        return dataclasses.replace(self, **changes)


@dataclass(slots=True, kw_only=True)
class Answer:
    """The end (or current state) of one request to one target."""

    #: The target's name: an agent id, ``role:<name>`` or ``callable:<name>``.
    target: str
    #: ``processed``: answered; ``failed``; ``timeout`` (stopped after the wait); ``pending``
    #: (still queued or running, the wait ended first).
    status: AnswerStatus
    #: The agent that produced it (None for a callable).
    agent_id: str | None = None
    text: str | None = None
    usage: Usage = field(default_factory=Usage)
    #: The inbox receipt (for agent targets).
    receipt: Receipt | None = None
    #: Ids of the request message and of the reply envelope (agent targets).
    message_id: str | None = None
    reply_id: str | None = None
    error: PenguinError | None = None
    #: Earlier attempts that failed before this one answered (fallback lineage), oldest first.
    attempts: list[Answer] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "processed"

    @property
    def fallback_used(self) -> bool:
        return bool(self.attempts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "status": self.status,
            "agent_id": self.agent_id,
            "text": self.text,
            "usage": self.usage.to_dict(),
            "receipt": self.receipt.to_dict() if self.receipt is not None else None,
            "message_id": self.message_id,
            "reply_id": self.reply_id,
            "error": self.error.to_problem() if self.error is not None else None,
            "fallback_used": self.fallback_used,
            "attempts": [a.to_dict() for a in self.attempts],
        }


class Target(Protocol):
    """Anything that can answer a request."""

    @property
    def name(self) -> str: ...

    async def run(self, request: Request) -> Answer: ...


AskFn = Callable[[str, Request], Awaitable[Answer]]
"""(agent_id, request) → answer; the messenger's ``ask``."""
LiteFn = Callable[[str], str | Awaitable[str]]
"""A plain function used as a lite agent: request text → reply text."""


class AgentTarget:
    """One agent, reached through its durable inbox."""

    def __init__(self, agent_id: str, ask: AskFn) -> None:
        self.agent_id = agent_id
        self._ask = ask

    @property
    def name(self) -> str:
        return self.agent_id

    async def run(self, request: Request) -> Answer:
        return await self._ask(self.agent_id, request)


class CallableTarget:
    """A plain Python function (sync or async) used as a lite agent."""

    def __init__(self, fn: LiteFn, *, name: str | None = None) -> None:
        self._fn = fn
        self._name = f"callable:{name or getattr(fn, '__name__', 'lite')}"

    @property
    def name(self) -> str:
        return self._name

    async def run(self, request: Request) -> Answer:
        async def call() -> str:
            out = self._fn(request.text)
            if inspect.isawaitable(out):
                out = await out
            return str(out)

        try:
            text = await asyncio.wait_for(call(), request.timeout)
        except TimeoutError:
            return Answer(target=self.name, status="timeout",
                          error=RuntimeFailure(f"{self.name} did not answer within {request.timeout}s"))
        except PenguinError as exc:
            return Answer(target=self.name, status="failed", error=exc)
        except Exception as exc:  # the lite agent's own bug becomes a failed answer, not a crash
            return Answer(target=self.name, status="failed", error=RuntimeFailure(f"{type(exc).__name__}: {exc}"))
        return Answer(target=self.name, status="processed", text=text)


class MissingTarget:
    """No agent can take the request (an empty role); fails with ``error`` so fallbacks engage."""

    def __init__(self, name: str, error: PenguinError) -> None:
        self._name = name
        self._error = error

    @property
    def name(self) -> str:
        return self._name

    async def run(self, request: Request) -> Answer:
        return Answer(target=self._name, status="failed", error=self._error)
