"""``Engine.run_turn``: context → model → tools → loop, bounded, persisted once.

A turn appends the user message, then alternates model calls and tool calls until the model
answers without tool calls or ``max_iterations`` model calls were made. All of the turn's new
messages are written in one transaction at the end. A cancelled turn (``CancelledError`` at any
await point) still records the user message and a ``status`` row saying it was cancelled; a
failed model call records the user message and the error, then raises ``ModelError``.

A turn binds its agent, conversation and turn ids for logging (``telemetry.logs``) while it runs,
and a failed turn writes exactly one WARNING line with the reason; a successful turn logs nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from penguin.agents.spec import AgentSpec
from penguin.config import Settings
from penguin.conversations.context import ContextAssembler
from penguin.conversations.messages import Conversation, Message
from penguin.conversations.store import ConversationStore
from penguin.engine.results import ChatResult, EventHook, TurnEvent
from penguin.errors import PenguinError
from penguin.memory.hooks import MemoryHooks, RecallBlock
from penguin.models.base import (
    Model,
    ModelRequest,
    ModelResponse,
    StreamDone,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from penguin.models.registry import ModelRegistry
from penguin.naming import new_id
from penguin.telemetry import genai
from penguin.telemetry.logs import bind_turn, unbind_turn
from penguin.telemetry.prometheus import RuntimeMetrics
from penguin.telemetry.tracing import Tracing
from penguin.tools.base import ToolContext, ToolOutcome
from penguin.tools.registry import ToolRegistry

log = logging.getLogger("penguin.engine")


@dataclass(slots=True, kw_only=True)
class TurnInput:
    """One inbound message and how to process it."""

    text: str
    sender: str = "human"
    recipient_id: str | None = None
    channel: str | None = None
    message_type: str = "message"
    #: Extra JSON context shown to the model with this message (not part of its text).
    context: Mapping[str, Any] | None = None
    #: Per-call model override (``provider:model``); the agent's own setting is unchanged.
    model: str | None = None
    max_iterations: int | None = None
    stream: bool = False
    task_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


class Engine:
    def __init__(
        self,
        *,
        settings: Settings,
        models: ModelRegistry,
        store: ConversationStore,
        tools: ToolRegistry,
        core: Any = None,
        memory: MemoryHooks | None = None,
        metrics: RuntimeMetrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        #: Turn, model-call and tool-call spans when OpenTelemetry is on (``telemetry.tracing``).
        self._tracing = tracing if tracing is not None else Tracing()
        self._settings = settings
        #: Model-call duration and errors by provider (``/metrics``).
        self._metrics = metrics
        #: Compaction and automatic recall (penguin.memory), called before the first model call.
        self._memory = memory
        self._models = models
        self._store = store
        self._tools = tools
        self._core = core
        #: Context assembly that measures each history's new messages only.
        self._assembler = ContextAssembler()

    def model_for(self, spec: AgentSpec, override: str | None = None) -> str:
        return override or spec.model or self._settings.resolved_default_model()

    async def run_turn(
        self,
        spec: AgentSpec,
        conversation: Conversation,
        turn: TurnInput,
        *,
        on_event: EventHook | None = None,
    ) -> ChatResult:
        started = time.perf_counter()
        turn_id = new_id("turn")
        bound = bind_turn(spec.agent_id, conversation.id, turn_id)
        try:
            if self._tracing.enabled:
                return await self._traced_turn(spec, conversation, turn, turn_id, started, on_event)
            return await self._run_turn(spec, conversation, turn, turn_id, started, on_event)
        finally:
            unbind_turn(bound)

    async def _traced_turn(
        self,
        spec: AgentSpec,
        conversation: Conversation,
        turn: TurnInput,
        turn_id: str,
        started: float,
        on_event: EventHook | None,
    ) -> ChatResult:
        attributes = {
            **genai.ids(spec.agent_id, conversation.id, turn_id),
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.id": spec.agent_id,
            "gen_ai.agent.name": spec.agent_id,
            "gen_ai.conversation.id": conversation.id,
            "gen_ai.request.model": self.model_for(spec, turn.model).partition(":")[2],
        }
        with self._tracing.span(f"invoke_agent {spec.agent_id}", attributes) as span:
            result = await self._run_turn(spec, conversation, turn, turn_id, started, on_event)
            span.set_attributes(genai.usage(result.usage))
            span.set_attribute("penguin.turn.status", result.status)
            return result

    async def _run_turn(
        self,
        spec: AgentSpec,
        conversation: Conversation,
        turn: TurnInput,
        turn_id: str,
        started: float,
        on_event: EventHook | None,
    ) -> ChatResult:
        model_name = self.model_for(spec, turn.model)
        model = self._models.get(model_name)
        provider = model_name.partition(":")[0]
        history = await self._store.messages(conversation.id)
        user_meta: dict[str, Any] = dict(turn.metadata)
        if turn.context:
            user_meta["context"] = dict(turn.context)
        new: list[Message] = [
            Message(
                conversation_id=conversation.id,
                agent_id=spec.agent_id,
                sender=turn.sender,
                recipient_id=turn.recipient_id or spec.agent_id,
                role="user",
                message_type=turn.message_type,
                channel=turn.channel,
                content=turn.text,
                turn_id=turn_id,
                metadata=user_meta or None,
                tenant_id=spec.tenant_id,
            )
        ]
        result = ChatResult(
            text="", agent_id=spec.agent_id, conversation_id=conversation.id, turn_id=turn_id, model=model_name
        )
        if on_event is not None:
            await on_event(
                TurnEvent(
                    type="start",
                    agent_id=spec.agent_id,
                    conversation_id=conversation.id,
                    data={"turn_id": turn_id, "model": model_name},
                )
            )
        budget = spec.context_tokens or self._settings.context_tokens
        schemas = self._tools.schemas_for(spec)
        max_iterations = turn.max_iterations or self._settings.max_iterations
        params = spec.model_parameters
        ctx = ToolContext(
            agent_id=spec.agent_id,
            conversation_id=conversation.id,
            turn_id=turn_id,
            task_id=turn.task_id,
            core=self._core,
            policy=spec.tool_policy,
        )
        model_ms = tools_ms = 0.0
        recall: RecallBlock | None = None
        try:
            if self._memory is not None:
                prepared = await self._memory.before_turn(spec, conversation, history, new, budget)
                history, recall = prepared.history, prepared.recall
            while True:
                result.iterations += 1
                window = budget - (recall.tokens if recall else 0)
                messages = self._assembler.assemble(spec.system_prompt, [*history, *new], window)
                request = ModelRequest(
                    messages=recall.insert(messages) if recall else messages,
                    tools=schemas,
                    parameters=params,
                    agent_id=spec.agent_id,
                )
                t0 = time.perf_counter()
                try:
                    if self._tracing.enabled:
                        response = await self._traced_model_call(
                            model_name, model, request, spec, conversation, turn, turn_id, on_event
                        )
                    else:
                        response = await self._model_call(model, request, spec, conversation, turn, on_event)
                except PenguinError as exc:
                    if self._metrics is not None:
                        self._metrics.observe_model_call(provider, time.perf_counter() - t0, exc.code)
                    raise
                elapsed = time.perf_counter() - t0
                if self._metrics is not None:
                    self._metrics.observe_model_call(provider, elapsed)
                model_ms += elapsed * 1000
                result.usage.add(response.usage)
                new.append(self._assistant_message(spec, conversation, turn, turn_id, response))
                if not response.tool_calls:
                    result.text = response.text
                    break
                if result.iterations >= max_iterations:
                    result.text = response.text
                    result.status = "max_iterations"
                    break
                t1 = time.perf_counter()
                outcomes = await self._run_tools(spec, ctx, response, conversation, on_event)
                tools_ms += (time.perf_counter() - t1) * 1000
                for outcome in outcomes:
                    result.tool_calls.append(outcome.to_dict())
                    new.append(self._tool_message(spec, conversation, turn, turn_id, outcome))
        except asyncio.CancelledError:
            new.append(self._status(spec, conversation, turn_id, "turn cancelled", {"status": "cancelled"}))
            await asyncio.shield(self._store.append(conversation.id, new))
            raise
        except PenguinError as exc:
            log.warning("turn failed: %s [%s, status %s]", exc.detail, exc.code, exc.status)
            new.append(
                self._status(
                    spec,
                    conversation,
                    turn_id,
                    f"turn failed: {exc.detail}",
                    {"status": "failed", "error": exc.to_problem()},
                )
            )
            await asyncio.shield(self._store.append(conversation.id, new))
            raise
        await self._store.append(conversation.id, new)
        result.message_ids = [m.id for m in new]
        result.timings = {
            "total": (time.perf_counter() - started) * 1000,
            "model": model_ms,
            "tools": tools_ms,
        }
        if on_event is not None:
            await on_event(
                TurnEvent(type="final", agent_id=spec.agent_id, conversation_id=conversation.id, data=result.to_dict())
            )
        return result

    async def _model_call(
        self,
        model: Model,
        request: ModelRequest,
        spec: AgentSpec,
        conversation: Conversation,
        turn: TurnInput,
        on_event: EventHook | None,
    ) -> ModelResponse:
        if turn.stream:
            return await self._stream_call(model, request, spec, conversation, on_event)
        return await model.complete(request)

    async def _traced_model_call(
        self,
        model_name: str,
        model: Model,
        request: ModelRequest,
        spec: AgentSpec,
        conversation: Conversation,
        turn: TurnInput,
        turn_id: str,
        on_event: EventHook | None,
    ) -> ModelResponse:
        provider, _, name = model_name.partition(":")
        attributes = {
            **genai.ids(spec.agent_id, conversation.id, turn_id),
            "gen_ai.operation.name": "chat",
            "gen_ai.system": provider,
            "gen_ai.request.model": name,
        }
        with self._tracing.span(f"chat {name}", attributes) as span:
            response = await self._model_call(model, request, spec, conversation, turn, on_event)
            span.set_attributes(genai.usage(response.usage))
            span.set_attribute("gen_ai.response.model", response.model or name)
            span.set_attribute("gen_ai.response.finish_reasons", (response.finish_reason,))
            return response

    async def _call_tool(self, spec: AgentSpec, ctx: ToolContext, call: ToolCall) -> ToolOutcome:
        if not self._tracing.enabled:
            return await self._tools.call(spec, ctx, call.id, call.name, call.arguments)
        attributes = {
            **genai.ids(spec.agent_id, ctx.conversation_id, ctx.turn_id),
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": call.name,
            "gen_ai.tool.call.id": call.id,
        }
        with self._tracing.span(f"execute_tool {call.name}", attributes) as span:
            outcome = await self._tools.call(spec, ctx, call.id, call.name, call.arguments)
            genai.tool_outcome(span, outcome.error, outcome.denied)
            return outcome

    async def _stream_call(
        self,
        model: Model,
        request: ModelRequest,
        spec: AgentSpec,
        conversation: Conversation,
        on_event: EventHook | None,
    ) -> ModelResponse:
        response: ModelResponse | None = None
        async for event in model.stream(request):
            if isinstance(event, StreamDone):
                response = event.response
            elif on_event is not None and isinstance(event, TextDelta):
                await on_event(
                    TurnEvent(
                        type="delta", agent_id=spec.agent_id, conversation_id=conversation.id, data={"text": event.text}
                    )
                )
            elif on_event is not None and isinstance(event, ToolCallDelta):
                continue
        if response is None:
            return ModelResponse(text="", usage=Usage(), model=model.name)
        return response

    async def _run_tools(
        self,
        spec: AgentSpec,
        ctx: ToolContext,
        response: ModelResponse,
        conversation: Conversation,
        on_event: EventHook | None,
    ) -> list[ToolOutcome]:
        if on_event is not None:
            for call in response.tool_calls:
                await on_event(
                    TurnEvent(
                        type="tool_call",
                        agent_id=spec.agent_id,
                        conversation_id=conversation.id,
                        data={"id": call.id, "name": call.name, "arguments": call.arguments},
                    )
                )
        if len(response.tool_calls) == 1:
            outcomes = [await self._call_tool(spec, ctx, response.tool_calls[0])]
        else:
            outcomes = list(await asyncio.gather(*(self._call_tool(spec, ctx, c) for c in response.tool_calls)))
        if on_event is not None:
            for outcome in outcomes:
                await on_event(
                    TurnEvent(
                        type="tool_result",
                        agent_id=spec.agent_id,
                        conversation_id=conversation.id,
                        data=outcome.to_dict(),
                    )
                )
        return outcomes

    @staticmethod
    def _assistant_message(
        spec: AgentSpec, conversation: Conversation, turn: TurnInput, turn_id: str, response: ModelResponse
    ) -> Message:
        return Message(
            conversation_id=conversation.id,
            agent_id=spec.agent_id,
            sender=spec.agent_id,
            recipient_id=turn.sender,
            role="assistant",
            message_type="action" if response.tool_calls else "message",
            channel=turn.channel,
            content=response.text,
            tool_calls=[c.to_wire() for c in response.tool_calls] or None,
            usage=response.usage.to_dict(),
            turn_id=turn_id,
            tenant_id=spec.tenant_id,
        )

    @staticmethod
    def _tool_message(
        spec: AgentSpec, conversation: Conversation, turn: TurnInput, turn_id: str, outcome: ToolOutcome
    ) -> Message:
        return Message(
            conversation_id=conversation.id,
            agent_id=spec.agent_id,
            sender=f"tool:{outcome.name}",
            recipient_id=spec.agent_id,
            role="tool",
            message_type="action",
            channel=turn.channel,
            content=outcome.result,
            tool_call_id=outcome.call_id,
            name=outcome.name,
            turn_id=turn_id,
            metadata={
                "duration_ms": round(outcome.duration_ms, 3),
                "error": outcome.error,
                "denied": outcome.denied,
                "started_at": outcome.started_at,
            },
            tenant_id=spec.tenant_id,
        )

    @staticmethod
    def _status(spec: AgentSpec, conversation: Conversation, turn_id: str, text: str, meta: dict[str, Any]) -> Message:
        return Message(
            conversation_id=conversation.id,
            agent_id=spec.agent_id,
            sender="system",
            role="system",
            message_type="status",
            content=text,
            turn_id=turn_id,
            metadata=meta,
            tenant_id=spec.tenant_id,
        )
