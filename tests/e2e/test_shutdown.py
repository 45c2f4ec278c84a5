"""Graceful shutdown of ``penguin serve``: in-flight turns finish (or are recorded cancelled), none lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from penguin_server import InProcessServer, PenguinServer, eventually

from penguin import PenguinCore
from penguin.api.errors import ServerShuttingDown
from penguin.api.inflight import TrackerState, TurnTracker
from penguin.api_client import APIConnectionError, ChatOptions, PenguinClient

API = "/api/v1"


async def test_sigterm_finishes_in_flight_http_and_websocket_turns(tmp_path: Path) -> None:
    server = PenguinServer(tmp_path).start()
    try:
        async with PenguinClient(server.url) as client:
            for agent_id in ("slow-http", "slow-ws"):
                await client.create_agent(agent_id, model_parameters={"delay": 1.0})
            http_chat = asyncio.create_task(client.chat("answer me", ChatOptions(agent_id="slow-http")))
            async with client.chat_stream_socket() as ws:
                await ws.chat("answer me too", ChatOptions(agent_id="slow-ws"), request_id="ws")
                assert [(await ws.recv()).type, (await ws.recv()).type] == ["accepted", "start"]

                async def http_turn_running() -> bool:
                    status = (await client.get_agent("slow-http")).status
                    return status is not None and bool(status.running)

                await eventually(http_turn_running)
                assert server.process is not None
                server.process.terminate()
                reply = await http_chat  # the open request is answered before the server exits
                assert str(reply) == "answer me"
                with pytest.raises(APIConnectionError):  # the socket is closed by the shutdown
                    while True:
                        await ws.recv()
        code = server.stop()
        log = "".join(server.log)
        assert code in (0, -15) and "Application shutdown complete." in log and "Traceback" not in log, log
    finally:
        server.kill()

    restarted = PenguinServer(tmp_path).start()
    try:
        async with PenguinClient(restarted.url) as client:
            for agent_id, text in (("slow-http", "answer me"), ("slow-ws", "answer me too")):
                conv = (await client.list_conversations(agent_id))[0]
                history = await client.get_conversation_history(conv.id)
                assert [(m.role, m.content) for m in history.messages] == [("user", text), ("assistant", text)]
    finally:
        restarted.stop()


async def test_turns_past_the_grace_period_are_cancelled_and_recorded(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        await core.create_agent("stuck", model_parameters={"delay": 30})
        srv = InProcessServer(core, shutdown_grace=0.2)
        async with srv, PenguinClient(srv.url) as client, client.chat_stream_socket() as ws:
            await ws.chat("will not finish", ChatOptions(agent_id="stuck"))
            assert [(await ws.recv()).type, (await ws.recv()).type] == ["accepted", "start"]
            await srv.shutdown()
        history = await core.history("stuck")
        assert [(m.role, m.content) for m in history] == [("user", "will not finish"), ("system", "turn cancelled")]


async def test_a_draining_tracker_refuses_new_turns() -> None:
    tracker = TurnTracker()
    finished = asyncio.Event()

    async def turn() -> str:
        await finished.wait()
        return "done"

    running = tracker.start(turn())
    drain = asyncio.create_task(tracker.drain(grace=5))
    await asyncio.sleep(0)
    assert tracker.state is TrackerState.DRAINING

    async def late() -> None:
        return None

    with pytest.raises(ServerShuttingDown):
        tracker.start(late())
    finished.set()
    report = await drain
    assert (report.finished, report.cancelled) == (1, 0) and running.result() == "done"
    assert tracker.state.value == "closed" and len(tracker) == 0


async def test_health_reports_stopping_while_draining(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        from penguin.api import create_app

        app = create_app(core)
        state = app.state.penguin
        state.tracker.state = TrackerState.DRAINING
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            assert (await http.get(f"{API}/health")).json()["status"] == "stopping"
            refused = await http.post(f"{API}/chat", json={"text": "too late"})
        assert refused.status_code == 503 and refused.json()["type"].endswith("/shutting-down")
        assert await core.history("default") == []
