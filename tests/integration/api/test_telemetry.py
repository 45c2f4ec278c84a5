"""``GET /api/v1/telemetry``, ``GET /metrics`` and ``/api/v1/ws/telemetry`` over an in-process app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from penguin_server import InProcessServer, eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from penguin import PenguinCore
from penguin.api import create_app
from penguin.api_client import ChatOptions, NotFoundError, PenguinClient, TelemetrySummaryInfo, ValidationError

API = "/api/v1"


@pytest.fixture
async def http(app_core: PenguinCore) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(app_core))
    async with httpx.AsyncClient(transport=transport, base_url="http://penguin.test") as client:
        yield client


async def test_summary_counts_per_agent_and_filters(local: PenguinClient, http: httpx.AsyncClient) -> None:
    replies = {agent_id: [await local.chat(f"{agent_id} {i}", _opts(agent_id)) for i in range(n)]
               for agent_id, n in (("support", 2), ("engineering", 1), ("release", 3))}

    body = (await http.get(f"{API}/telemetry")).json()
    assert body["turns"] == 6 and body["agent_id"] is None
    for agent_id, done in replies.items():
        entry = body["agents"][agent_id]
        assert entry["turns"] == len(done)
        assert entry["tokens"]["input_tokens"] == sum(r.usage.input_tokens for r in done)
        assert entry["tokens"]["output_tokens"] == sum(r.usage.output_tokens for r in done)
        assert entry["latency_ms"]["count"] == len(done)

    typed = await local.get_telemetry_summary()
    assert isinstance(typed, TelemetrySummaryInfo)
    assert typed.agents["release"].turns == 3 and typed.tokens.total_tokens == body["tokens"]["total_tokens"]
    one = await local.get_telemetry_summary("engineering")
    assert one.agent_id == "engineering" and list(one.agents) == ["engineering"] and one.turns == 1


async def test_bad_agent_ids(local: PenguinClient, http: httpx.AsyncClient) -> None:
    bad = await http.get(f"{API}/telemetry", params={"agent_id": "not valid!"})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["field"] == "agent_id"
    too_long = await http.get(f"{API}/telemetry", params={"agent_id": "a" * 65})
    assert too_long.status_code == 422
    unknown = await http.get(f"{API}/telemetry", params={"agent_id": "ghost"})
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/agent-not-found")
    with pytest.raises(NotFoundError):
        await local.get_telemetry_summary("ghost")
    with pytest.raises(ValidationError):
        await local.get_telemetry_summary("bad id")


async def test_prometheus_metrics(local: PenguinClient, http: httpx.AsyncClient) -> None:
    await local.chat("count me", _opts("scraped"))
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'penguin_agent_turns_total{agent_id="scraped"} 1.0' in response.text
    assert 'penguin_agent_turn_duration_seconds_count{agent_id="scraped"} 1.0' in response.text


async def test_websocket_pushes_snapshots_until_the_client_closes(app_core: PenguinCore) -> None:
    async with InProcessServer(app_core) as srv, PenguinClient(srv.url) as client:
        await client.chat("before", _opts("watched"))
        async with client.telemetry_stream(agent_id="watched", interval=0.2) as stream:
            first = await asyncio.wait_for(stream.recv(), 5)
            assert first.agent_id == "watched" and first.agents["watched"].turns == 1
            assert (await client.health()).websocket.connections == 1
            await client.chat("after", _opts("watched"))
            async with asyncio.timeout(5):
                while (snapshot := await stream.recv()).turns < 2:
                    pass
            assert snapshot.agents["watched"].turns == 2

        async def closed() -> bool:
            return (await client.health()).websocket.connections == 0

        await eventually(closed, timeout=5)


async def test_websocket_frames_carry_type_and_seq(app_core: PenguinCore) -> None:
    async with InProcessServer(app_core) as srv:
        url = srv.url.replace("http://", "ws://") + f"{API}/ws/telemetry?interval=0.2"
        async with connect(url) as ws:
            frames = [orjson.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
    assert [(f["type"], f["seq"]) for f in frames] == [("telemetry", 1), ("telemetry", 2)]
    assert "default" in frames[0]["agents"]


@pytest.mark.parametrize(("query", "status", "field"), [
    ("interval=0.1", 422, "interval"),
    ("interval=61", 422, "interval"),
    ("interval=soon", 422, "interval"),
    ("agent_id=bad%20id", 422, "agent_id"),
    ("agent_id=ghost", 404, "agent_id"),
])
async def test_websocket_refuses_bad_queries(app_core: PenguinCore, query: str, status: int, field: str) -> None:
    """A refused query gets one error frame (the problem body) and close 1008; the client raises it typed."""
    async with InProcessServer(app_core) as srv:
        url = srv.url.replace("http://", "ws://") + f"{API}/ws/telemetry?{query}"
        async with connect(url) as ws:
            frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert frame["type"] == "error"
        assert frame["problem"]["status"] == status and frame["problem"]["field"] == field
        assert ws.close_code == 1008
        async with PenguinClient(srv.url) as client:
            error = NotFoundError if status == 404 else ValidationError
            with pytest.raises(error):
                key, _, value = query.partition("=")
                args = {"agent_id": value.replace("%20", " ")} if key == "agent_id" else {}
                interval = 1.0 if key == "agent_id" else (0.1 if value == "soon" else float(value))
                async with client.telemetry_stream(interval=interval, **args) as stream:
                    await stream.recv()


def _opts(agent_id: str) -> ChatOptions:
    return ChatOptions(agent_id=agent_id)
