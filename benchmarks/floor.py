"""The wire floor: the same LLM calls as plain httpx POSTs with a hand-kept message list.

This is the least any orchestrator could spend: one keep-alive ``httpx.AsyncClient``, orjson
bodies, a Python list of OpenAI-shaped dicts appended to by hand, no persistence. Penguin's
overhead is its wall time minus this, per LLM call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson

from benchmarks.plan import (
    IN_FLIGHT,
    MODEL,
    SYSTEM,
    W2_AGENTS,
    W3_TURNS,
    Measurement,
    Plan,
    Stopwatch,
    Variant,
    lookup,
    user_text,
)

#: The tool offered in W4, exactly as Penguin describes ``lookup`` to the model.
LOOKUP_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look up the value stored under a number.",
        "parameters": {
            "additionalProperties": False,
            "properties": {"n": {"type": "integer"}},
            "required": ["n"],
            "type": "object",
        },
    },
}


class FloorError(RuntimeError):
    """The fake server answered the floor with something other than a completion."""


class Wire:
    """Chat-completion turns with a hand-kept message list over one keep-alive connection pool.

    Subclasses supply the transport (``post``, ``aclose``).
    """

    async def post(self, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    async def call(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": MODEL, "messages": messages}
        if tools:
            body["tools"] = tools
        status, content = await self.post(orjson.dumps(body))
        if status != 200:
            raise FloorError(f"fake server answered {status}: {content[:200]!r}")
        message: dict[str, Any] = orjson.loads(content)["choices"][0]["message"]
        return message

    async def turn(self, messages: list[dict[str, Any]], text: str) -> None:
        """One plain turn: user message in, assistant reply appended."""
        messages.append({"role": "user", "content": text})
        reply = await self.call(messages)
        messages.append({"role": "assistant", "content": reply["content"]})

    async def tool_turn(self, messages: list[dict[str, Any]], text: str) -> None:
        """One W4 turn: the model calls ``lookup``, we run it, the model answers."""
        tools = [LOOKUP_TOOL]
        messages.append({"role": "user", "content": text})
        reply = await self.call(messages, tools)
        calls = reply.get("tool_calls") or []
        messages.append({"role": "assistant", "content": reply.get("content"), "tool_calls": calls})
        for call in calls:
            arguments = orjson.loads(call["function"]["arguments"])
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": lookup(**arguments)})
        final = await self.call(messages, tools)
        messages.append({"role": "assistant", "content": final["content"]})


class HttpxWire(Wire):
    """One ``httpx.AsyncClient``: the floor the targets are measured against."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=60.0, headers={"content-type": "application/json"})

    async def post(self, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post("/chat/completions", content=body)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


class AioWire(Wire):
    """One ``aiohttp.ClientSession``: the transport Penguin's model clients use, so Penguin's own
    cost is its distance to this floor."""

    def __init__(self, base_url: str) -> None:
        self.session = aiohttp.ClientSession(headers={"content-type": "application/json"})
        self.url = base_url.rstrip("/") + "/chat/completions"

    async def post(self, body: bytes) -> tuple[int, bytes]:
        async with self.session.post(self.url, data=body) as response:
            return response.status, await response.read()

    async def aclose(self) -> None:
        await self.session.close()


def _system() -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM}]


async def run_floor(plan: Plan, base_url: str, variant: Variant = "floor") -> Measurement:
    """Run ``plan`` as the floor (httpx, or aiohttp for ``aiofloor``); wall time and per-turn latencies."""
    wire: Wire = AioWire(base_url) if variant == "aiofloor" else HttpxWire(base_url)
    result = Measurement(workload=plan.workload, variant=variant)
    turn_ms: list[float] = []
    clock = Stopwatch()
    try:
        if plan.workload == "W4":
            await wire.tool_turn(_system(), user_text(-1))
        else:
            await wire.turn(_system(), user_text(-1))
        clock.start()
        if plan.workload == "W1":
            await _sequential(wire.turn, plan.size, turn_ms)
        elif plan.workload == "W2":
            await _round_robin(wire, plan.size, turn_ms)
        elif plan.workload == "W3":
            await _many_agents(wire, plan.size, turn_ms)
        elif plan.workload == "W4":
            await _sequential(wire.tool_turn, plan.size, turn_ms)
        else:
            raise ValueError(f"{plan.workload} has no wire floor")
        clock.stop(result)
    finally:
        await wire.aclose()
    result.llm_calls = plan.expected_calls
    result.record_turns(turn_ms)
    return result


async def _sequential(
    turn: Callable[[list[dict[str, Any]], str], Awaitable[None]], turns: int, turn_ms: list[float]
) -> None:
    """W1 and W4's floor: one list, one turn after another."""
    messages = _system()
    for i in range(turns):
        t0 = time.perf_counter()
        await turn(messages, user_text(i))
        turn_ms.append((time.perf_counter() - t0) * 1000)


async def _round_robin(wire: Wire, turns: int, turn_ms: list[float]) -> None:
    """W2's floor: each agent keeps its own list; turn ``i`` goes to agent ``i % 3``."""
    lists = {name: _system() for name in W2_AGENTS}
    for i in range(turns):
        t0 = time.perf_counter()
        await wire.turn(lists[W2_AGENTS[i % len(W2_AGENTS)]], user_text(i))
        turn_ms.append((time.perf_counter() - t0) * 1000)


async def _many_agents(wire: Wire, agents: int, turn_ms: list[float]) -> None:
    """W3's floor: one list per agent, ``IN_FLIGHT`` agents at a time, each doing its turns in order."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def agent(index: int) -> None:
        async with gate:
            messages = _system()
            for turn in range(W3_TURNS):
                t0 = time.perf_counter()
                await wire.turn(messages, user_text(index * W3_TURNS + turn))
                turn_ms.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(agent(i) for i in range(agents)))
