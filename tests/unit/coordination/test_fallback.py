"""Lite-agent fallback: agent-level wrappers on error, timeout and no agent; model-level wrapper."""

from __future__ import annotations

import asyncio
import time

from penguin import PenguinCore, ScriptedModel
from penguin.bus import ReceiptStatus
from penguin.coordination import FallbackModel
from penguin.errors import AgentNotFound, ModelError
from penguin.models.base import ModelRequest
from penguin.models.scripted import last_user_text


async def test_fallback_engages_when_the_primary_model_errors(core: PenguinCore) -> None:
    await core.create_agent("primary", model="scripted:error")
    await core.create_agent("lite", model="scripted:echo")
    core.set_fallback("primary", "lite")

    answer = await core.ask("human", "primary", "summarize")

    assert (answer.status, answer.agent_id, answer.text) == ("processed", "lite", "summarize")
    assert answer.fallback_used
    (failed,) = answer.attempts
    assert (failed.agent_id, failed.status) == ("primary", "failed")
    assert isinstance(failed.error, ModelError)
    assert failed.receipt is not None and failed.receipt.status is ReceiptStatus.FAILED


async def test_fallback_engages_on_timeout_and_really_stops_the_primary(core: PenguinCore) -> None:
    await core.create_agent("slow", model="scripted:echo", model_parameters={"delay": 30})
    await core.create_agent("lite")
    core.set_fallback("slow", "lite", timeout=0.2)

    started = time.perf_counter()
    answer = await core.ask("human", "slow", "quick please")
    assert time.perf_counter() - started < 5

    assert (answer.agent_id, answer.text) == ("lite", "quick please")
    (timed_out,) = answer.attempts
    assert timed_out.status == "timeout" and timed_out.receipt is not None
    assert timed_out.receipt.status is ReceiptStatus.FAILED
    assert timed_out.receipt.reason == "no answer within 0.2s; stopped"
    assert core.agent_status("slow")["running"] == []
    assert core.inbox.pending("slow") == 0
    statuses = [m.metadata for m in await core.history("slow") if m.message_type == "status"]
    assert statuses == [{"status": "cancelled"}]


async def test_a_role_without_agents_falls_back_to_a_python_callable(core: PenguinCore) -> None:
    core.set_fallback("role:translator", lambda text: f"lite: {text.upper()}")
    answer = await core.round_robin("translator", "hola")
    assert (answer.status, answer.text, answer.agent_id) == ("processed", "lite: HOLA", None)
    assert answer.target == "callable:<lambda>"
    assert isinstance(answer.attempts[0].error, AgentNotFound)


async def test_no_fallback_when_the_primary_answers(core: PenguinCore) -> None:
    await core.create_agent("fine")
    core.set_fallback("fine", lambda text: "never")
    answer = await core.ask("human", "fine", "hello")
    assert (answer.text, answer.attempts) == ("hello", [])


async def test_fallback_model_wraps_a_failing_slow_or_oversized_primary(core: PenguinCore) -> None:
    async def slow(request: ModelRequest) -> str:
        await asyncio.sleep(30)
        return "too late"

    echo = core.models.get("scripted:echo")
    failing = FallbackModel(core.models.get("scripted:error"), echo, name="fallback:failing")
    timing_out = FallbackModel(ScriptedModel(slow), echo, timeout=0.1, name="fallback:slow")
    budget = FallbackModel(ScriptedModel(lambda r: "expensive"), echo, max_input_tokens=1, name="fallback:budget")
    for model in (failing, timing_out, budget):
        core.models.register(model.name, model)
        await core.create_agent(model.name.split(":")[1], model=model.name)

    assert (await core.chat("one", agent_id="failing")).text == "one"
    assert (await core.chat("two", agent_id="slow")).text == "two"
    assert (await core.chat("three words here", agent_id="budget")).text == "three words here"
    assert [m.engaged for m in (failing, timing_out, budget)] == [1, 1, 1]
    assert failing.last_model == "scripted:echo"

    streamed = [e async for e in core.stream_chat("streamed", agent_id="failing")]
    assert streamed[-1].type == "final" and streamed[-1].data["response"] == "streamed"


async def test_fallback_model_raises_when_every_model_fails(core: PenguinCore) -> None:
    error = core.models.get("scripted:error")
    both = FallbackModel(error, ScriptedModel(lambda r: last_user_text(r) or "x"), max_input_tokens=0)
    core.models.register("fallback:both", FallbackModel(error, error))
    await core.create_agent("doomed", model="fallback:both")
    answer = await core.ask("human", "doomed", "hi")
    assert answer.status == "failed" and isinstance(answer.error, ModelError)
    assert both.name == "fallback:scripted-error"
