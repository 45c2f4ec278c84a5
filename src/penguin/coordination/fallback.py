"""Lite-agent fallback, as wrappers: around a target (agent level) or around a model.

``FallbackTarget`` wraps a primary target and an ordered list of fallbacks (cheaper agents,
``role:`` targets, plain Python callables). It asks the primary and moves to the next only when
the answer failed for a reason the fallback is for (by default: the model failed, a budget or
quota was exceeded, no agent was available) or did not come within ``timeout`` seconds, in
which case the primary's work is really stopped (its message dequeued or its turn cancelled)
before the fallback runs. The winning answer carries the failed attempts in ``attempts``.

``FallbackModel`` does the same one level down: it is a ``Model`` that calls its primary model
and, on ``ModelError``, a timeout, or a request larger than ``max_input_tokens``, the next model
(any ``Model``: a cheaper provider model, or a ``ScriptedModel`` built from a function). Register
it under a name (``core.models.register("fallback:planner", FallbackModel(...))``) and give an
agent that model; the agent does not know.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from penguin.coordination.targets import Answer, Request, Target
from penguin.errors import AgentNotFound, ModelError, ModelNotInstalled, PenguinError, QuotaExceeded
from penguin.models.base import Model, ModelRequest, ModelResponse, StreamEvent
from penguin.models.scripted import estimate_tokens

#: Failures a fallback engages on (plus timeouts, always).
DEFAULT_ON: tuple[type[PenguinError], ...] = (ModelError, ModelNotInstalled, QuotaExceeded, AgentNotFound)


class FallbackTarget:
    """Try ``primary``, then each fallback in order, until one answers.

    Args:
        primary: the full agent (or role) normally used.
        fallbacks: the lite agents, in order.
        timeout: seconds each non-final attempt may take before it is stopped and the next one
            runs (None: wait as long as the request allows).
        on: error types that engage the next target.
    """

    def __init__(self, primary: Target, *fallbacks: Target, timeout: float | None = None,
                 on: tuple[type[PenguinError], ...] = DEFAULT_ON) -> None:
        self._chain: tuple[Target, ...] = (primary, *fallbacks)
        self._timeout = timeout
        self._on = on

    @property
    def name(self) -> str:
        return self._chain[0].name

    @property
    def chain(self) -> tuple[Target, ...]:
        return self._chain

    def engages(self, answer: Answer) -> bool:
        return answer.status == "timeout" or (answer.status == "failed" and isinstance(answer.error, self._on))

    async def run(self, request: Request) -> Answer:
        attempts: list[Answer] = []
        last = len(self._chain) - 1
        answer: Answer | None = None
        for index, target in enumerate(self._chain):
            attempt = request
            if index < last and self._timeout is not None:
                attempt = request.with_(timeout=self._timeout, on_timeout="cancel")
            answer = await target.run(attempt)
            if answer.ok or index == last or not self.engages(answer):
                break
            attempts.append(answer)
        if answer is None:  # unreachable: the chain always holds the primary
            raise RuntimeError("FallbackTarget has no targets")
        answer.attempts = [*attempts, *answer.attempts]
        return answer


class FallbackModel:
    """A ``Model`` that falls back to the next model on failure, timeout or an oversized request.

    Args:
        primary: the model normally used.
        fallbacks: cheaper or local models, tried in order.
        timeout: seconds a non-final model may take (None = no limit).
        max_input_tokens: a request estimated above this skips the primary (the budget).
        name: the registered name (default ``fallback:<primary name>``).
    """

    def __init__(self, primary: Model, *fallbacks: Model, timeout: float | None = None,
                 max_input_tokens: int | None = None, name: str | None = None) -> None:
        if not fallbacks:
            raise ValueError("FallbackModel needs at least one fallback model")
        self._chain: tuple[Model, ...] = (primary, *fallbacks)
        self._timeout = timeout
        self._max_input = max_input_tokens
        self.name = name or f"fallback:{primary.name.replace(':', '-')}"
        #: How many calls were answered by a fallback, and by which model the last call was.
        self.engaged = 0
        self.last_model = ""

    def _over_budget(self, request: ModelRequest) -> bool:
        if self._max_input is None:
            return False
        size = sum(estimate_tokens(str(m.get("content") or "")) for m in request.messages)
        return size > self._max_input

    async def complete(self, request: ModelRequest) -> ModelResponse:
        errors: list[str] = []
        last = len(self._chain) - 1
        for index, model in enumerate(self._chain):
            if index < last and index == 0 and self._over_budget(request):
                errors.append(f"{model.name}: request over the {self._max_input}-token budget")
                continue
            try:
                timeout = self._timeout if index < last else None
                response = await asyncio.wait_for(model.complete(request), timeout)
            except (ModelError, ModelNotInstalled, QuotaExceeded) as exc:
                if index == last:
                    raise
                errors.append(exc.detail)
                continue
            except TimeoutError:
                errors.append(f"{model.name}: no answer within {self._timeout}s")
                continue
            self.last_model = model.name
            if index:
                self.engaged += 1
            return response
        raise ModelError("; ".join(errors) or "every model failed", provider="fallback")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        """Streams the primary; falls back only while nothing has been yielded yet."""
        last = len(self._chain) - 1
        for index, model in enumerate(self._chain):
            if index < last and index == 0 and self._over_budget(request):
                continue
            stream = model.stream(request)
            iterator = aiter(stream)
            try:
                timeout = self._timeout if index < last else None
                first = await asyncio.wait_for(anext(iterator), timeout)
            except StopAsyncIteration:
                return
            except (ModelError, ModelNotInstalled, QuotaExceeded, TimeoutError):
                if index == last:
                    raise
                continue
            self.last_model = model.name
            if index:
                self.engaged += 1
            yield first
            async for event in iterator:
                yield event
            return

    async def aclose(self) -> None:
        """The wrapped models belong to the registry that built them; nothing to release here."""

