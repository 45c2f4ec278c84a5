"""The Penguin side of the LLM workloads, in-process: ``PenguinCore.chat`` against the fake server.

Persistence is on (the default SQLite database in WAL mode, one transaction per turn), the model
is ``openai:fake`` pointed at the fake server, and every reply is checked, so a benchmark that
silently stopped calling the model cannot report a good number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from benchmarks.plan import IN_FLIGHT, SYSTEM, W2_AGENTS, W3_TURNS, Measurement, Plan, Stopwatch, lookup, user_text
from penguin.core import PenguinCore
from penguin.engine.results import ChatResult
from penguin.tools.base import tool_from_function

#: A plain chat agent is offered no tools (the floor sends none); W4's agent only ``lookup``.
NO_TOOLS: dict[str, Any] = {"allow": []}
LOOKUP_ONLY: dict[str, Any] = {"allow": ["lookup"]}
#: The role W2's three agents share; the coordinator rotates through them.
ROLE = "worker"


class WrongReply(RuntimeError):
    """Penguin returned something the fake server cannot have sent."""


def check(result: ChatResult, *, tool_calls: int = 0) -> None:
    """Fail loudly unless the turn really went through the fake model (and its tool)."""
    if not result.text.startswith("ack ") or len(result.tool_calls) != tool_calls:
        raise WrongReply(f"unexpected turn result: {result.to_dict()!r}")
    for call in result.tool_calls:
        if call["error"] is not None:
            raise WrongReply(f"tool call failed: {call!r}")


def make_core(data_dir: Path, base_url: str) -> PenguinCore:
    return PenguinCore(data_dir=data_dir, model="openai:fake", openai_base_url=base_url)


async def run_inproc(plan: Plan, base_url: str, data_dir: Path) -> Measurement:
    """Run ``plan`` through an in-process ``PenguinCore``."""
    result = Measurement(workload=plan.workload, variant="inproc")
    turn_ms: list[float] = []
    clock = Stopwatch()
    async with make_core(data_dir, base_url) as core:
        tools = plan.workload == "W4"
        if tools:
            # A trivial tool does no blocking work, so it runs on the loop (sync tools default to
            # a worker thread, which would add a thread hop the floor does not pay).
            core.tools.register(tool_from_function(lookup, blocking=False))
        policy = LOOKUP_ONLY if tools else NO_TOOLS
        await core.create_agent("warmup", system_prompt=SYSTEM, tool_policy=policy)
        if plan.workload == "W3":
            agents = [f"agent-{i}" for i in range(plan.size)]
        elif plan.workload == "W2":
            agents = list(W2_AGENTS)
        else:
            agents = ["bench"]
        for agent_id in agents:
            await core.create_agent(agent_id, system_prompt=SYSTEM, roles=[agent_id], tool_policy=policy)
        if plan.workload == "W2":
            if getattr(core, "coordinator", None) is None:
                result.skipped = "core.coordinator is not built yet"
                return result
            await core.coordinator.assign_role(ROLE, agents)
        check(await core.chat(user_text(-1), agent_id="warmup"), tool_calls=int(tools))
        clock.start()
        if plan.workload in ("W1", "W4"):
            await _sequential(core, plan.size, turn_ms, tool_calls=int(tools))
        elif plan.workload == "W3":
            await _many_agents(core, agents, turn_ms)
        elif plan.workload == "W2":
            await _round_robin(core, plan.size, turn_ms)
        else:
            raise ValueError(f"{plan.workload} is not an LLM workload")
        clock.stop(result)
    result.llm_calls = plan.expected_calls
    result.record_turns(turn_ms)
    return result


async def _timed(turn_ms: list[float], turn: Awaitable[ChatResult], tool_calls: int = 0) -> None:
    t0 = time.perf_counter()
    result = await turn
    turn_ms.append((time.perf_counter() - t0) * 1000)
    check(result, tool_calls=tool_calls)


async def _sequential(core: PenguinCore, turns: int, turn_ms: list[float], *, tool_calls: int) -> None:
    for i in range(turns):
        await _timed(turn_ms, core.chat(user_text(i), agent_id="bench"), tool_calls)


async def _many_agents(core: PenguinCore, agents: list[str], turn_ms: list[float]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def agent(index: int, agent_id: str) -> None:
        async with gate:
            for turn in range(W3_TURNS):
                await _timed(turn_ms, core.chat(user_text(index * W3_TURNS + turn), agent_id=agent_id))

    await asyncio.gather(*(agent(i, a) for i, a in enumerate(agents)))


async def _round_robin(core: PenguinCore, turns: int, turn_ms: list[float]) -> None:
    """W2: every turn is ``coordinator.round_robin`` over the three agents holding one role.

    The coordinator sends the text as a bus message to the role's next agent, that agent's inbox
    runs the turn, and the reply comes back as the answer (with a receipt), so this measures the
    whole messaging path, not just ``chat``.
    """
    coordinator = core.coordinator
    for i in range(turns):
        t0 = time.perf_counter()
        answer = await coordinator.round_robin(ROLE, user_text(i))
        turn_ms.append((time.perf_counter() - t0) * 1000)
        if not answer.ok or not (answer.text or "").startswith("ack "):
            raise WrongReply(f"unexpected round-robin answer: {answer.to_dict()!r}")
