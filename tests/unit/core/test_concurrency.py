"""Isolation and ordering under concurrency: one writer per conversation, agents in parallel."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from penguin import PenguinAgent, PenguinCore, TurnCancelled


async def test_50_agents_x_20_turns_interleaved(core: PenguinCore) -> None:
    agents = [f"agent-{i}" for i in range(50)]
    for a in agents:
        await core.create_agent(a, model_parameters={"delay": 0.001})

    async def one_agent(agent: str) -> None:
        for turn in range(20):
            await core.chat(f"{agent}:{turn}", agent_id=agent)

    await asyncio.gather(*(one_agent(a) for a in agents))
    for a in agents:
        history = await core.history(a)
        assert [m.content for m in history] == [f"{a}:{t}" for t in range(20) for _ in (0, 1)]
        assert [m.seq for m in history] == list(range(1, 41))
        assert {m.agent_id for m in history} == {a}


async def test_same_agent_requests_are_queued_in_arrival_order(core: PenguinCore) -> None:
    await core.create_agent("one", model_parameters={"delay": 0.01})
    results = await asyncio.gather(*(core.chat(f"msg {i}", agent_id="one") for i in range(10)))
    assert [r.text for r in results] == [f"msg {i}" for i in range(10)]
    assert [m.content for m in await core.history("one")] == [f"msg {i}" for i in range(10) for _ in (0, 1)]
    assert results[-1].timings["queued"] > results[0].timings["queued"]


async def test_different_agents_run_in_parallel(core: PenguinCore) -> None:
    for i in range(5):
        await core.create_agent(f"p{i}", model_parameters={"delay": 0.2})
    started = time.perf_counter()
    await asyncio.gather(*(core.chat("x", agent_id=f"p{i}") for i in range(5)))
    assert time.perf_counter() - started < 0.6  # serial would take 1.0 s


async def test_pause_holds_messages_and_resume_runs_them(core: PenguinCore) -> None:
    await core.create_agent("p")
    await core.pause_agent("p")
    pending = [asyncio.create_task(core.chat(f"m{i}", agent_id="p")) for i in range(3)]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in pending)
    assert core.agent_status("p")["paused"] is True
    assert await core.history("p") == []
    await core.resume_agent("p")
    results = await asyncio.gather(*pending)
    assert [r.text for r in results] == ["m0", "m1", "m2"]


async def test_pause_survives_restart(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        await core.create_agent("p")
        await core.pause_agent("p")
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        task = asyncio.create_task(core.chat("waiting", agent_id="p"))
        await asyncio.sleep(0.05)
        assert not task.done()
        await core.resume_agent("p")
        assert (await task).text == "waiting"


async def test_cancel_stops_the_inflight_turn_and_records_it(core: PenguinCore) -> None:
    await core.create_agent("slow", model_parameters={"delay": 10})
    await core.create_agent("other", model_parameters={"delay": 0.05})
    turn = asyncio.create_task(core.chat("long job", agent_id="slow"))
    neighbour = asyncio.create_task(core.chat("unaffected", agent_id="other"))
    await _until_running(core, "slow")
    assert core.cancel("slow") != []
    with pytest.raises(TurnCancelled):
        await turn
    assert (await neighbour).text == "unaffected"
    history = await core.history("slow")
    assert [(m.role, m.message_type, m.content) for m in history] == [
        ("user", "message", "long job"),
        ("system", "status", "turn cancelled"),
    ]
    assert history[1].metadata == {"status": "cancelled"}
    await core.update_agent("slow", model_parameters={})
    assert (await core.chat("next", agent_id="slow")).text == "next"


async def _until_running(core: PenguinCore, agent_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not core.agent_status(agent_id)["running"]:  # noqa: ASYNC110 - status is polled state
        assert time.monotonic() < deadline, "the turn never started"
        await asyncio.sleep(0.005)


async def test_cancel_with_nothing_running(core: PenguinCore) -> None:
    assert core.cancel("default") == []


def test_penguin_agent_from_5_threads(tmp_path: Path) -> None:
    with PenguinAgent(data_dir=tmp_path, model="scripted:echo") as penguin:
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for turn in range(20):
                    penguin.chat(f"t{n}-{turn}", agent_id=f"thread-{n}")
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        for n in range(5):
            assert [m.content for m in penguin.history(f"thread-{n}")] == [
                f"t{n}-{turn}" for turn in range(20) for _ in (0, 1)
            ]


async def test_penguin_agent_inside_a_running_loop(tmp_path: Path) -> None:
    # A notebook cell already runs an event loop; the helper must still return plain results.
    with PenguinAgent(data_dir=tmp_path, model="scripted:echo") as penguin:
        result = penguin.chat("from inside a loop", agent_id="nb")
        assert not isinstance(result, asyncio.Task)
        assert str(result) == "from inside a loop"
