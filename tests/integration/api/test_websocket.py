"""``/api/v1/chat/stream``: many agents multiplexed on one socket, cancel, bad frames, slow readers."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import defaultdict

import httpx
import orjson
import pytest
from penguin_server import InProcessServer, PenguinServer, eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from penguin import PenguinCore
from penguin.api_client import ChatEvent, ChatOptions, ChatSocket, PenguinClient

API = "/api/v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def until_terminal(ws: ChatSocket, count: int) -> list[ChatEvent]:
    """Every event until ``count`` chats ended (final or error)."""
    events: list[ChatEvent] = []
    ended = 0
    async with asyncio.timeout(20):
        while ended < count:
            event = await ws.recv()
            events.append(event)
            ended += event.type in ("final", "error")
    return events


async def test_three_agents_multiplexed_on_one_socket(remote: PenguinClient, http: httpx.AsyncClient) -> None:
    agents = [unique(name) for name in ("support", "engineering", "release")]
    for agent_id in agents:
        await remote.create_agent(agent_id, model_parameters={"delay": 0.05, "chunk": 2})
    texts = {agent_id: f"{agent_id} says " + "abcdefghij" * 200 for agent_id in agents}
    async with remote.chat_stream_socket() as ws:
        request_ids = {
            await ws.chat(texts[agent_id], ChatOptions(agent_id=agent_id), request_id=f"r-{agent_id}"): agent_id
            for agent_id in agents
        }
        events = await until_terminal(ws, 3)

    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # contiguous per connection
    by_request: dict[str, list[ChatEvent]] = defaultdict(list)
    for event in events:
        assert event.request_id in request_ids
        assert event.agent_id == request_ids[event.request_id]  # every event attributed correctly
        by_request[event.request_id].append(event)
    for request_id, agent_id in request_ids.items():
        own = by_request[request_id]
        assert [e.type for e in own[:2]] == ["accepted", "start"] and own[-1].type == "final"
        assert "".join(e.text or "" for e in own if e.type == "delta") == texts[agent_id]
        final = own[-1].result()
        assert final.response == texts[agent_id] and final.agent_id == agent_id
        assert {e.conversation_id for e in own[1:]} == {final.conversation_id}
        log = (await http.get(f"{API}/conversations/{final.conversation_id}/history")).json()["messages"]
        assert [m["content"] for m in log] == [texts[agent_id]] * 2
    deltas = [e.request_id for e in events if e.type == "delta"]
    switches = sum(1 for a, b in zip(deltas, deltas[1:], strict=False) if a != b)
    assert switches > 3, "the three streams should interleave, not run one after another"


async def test_same_agent_on_one_socket_is_serialized_in_order(remote: PenguinClient) -> None:
    agent_id = unique("serial-ws")
    await remote.create_agent(agent_id, model_parameters={"delay": 0.02})
    async with remote.chat_stream_socket() as ws:
        for i in range(4):
            await ws.chat(f"turn {i}", ChatOptions(agent_id=agent_id), request_id=f"t{i}")
        events = await until_terminal(ws, 4)
    finals = [e for e in events if e.type == "final"]
    assert [e.request_id for e in finals] == ["t0", "t1", "t2", "t3"]
    assert [e.result().response for e in finals] == [f"turn {i}" for i in range(4)]
    history = await remote.get_conversation_history(finals[0].result().conversation_id)
    assert [m.content for m in history.messages if m.role == "user"] == [f"turn {i}" for i in range(4)]


async def test_cancel_frame_stops_one_chat_and_the_socket_carries_on(remote: PenguinClient) -> None:
    slow, fast = unique("slow"), unique("fast")
    await remote.create_agent(slow, model_parameters={"delay": 10})
    async with remote.chat_stream_socket() as ws:
        await ws.chat("stuck", ChatOptions(agent_id=slow), request_id="stuck")
        events = [await ws.recv(), await ws.recv()]  # accepted, start
        assert [e.type for e in events] == ["accepted", "start"]
        await ws.cancel("stuck")
        cancelled = await ws.recv()
        assert cancelled.type == "error" and cancelled.request_id == "stuck" and cancelled.agent_id == slow
        assert cancelled.problem is not None and cancelled.problem["status"] == 409
        await ws.chat("still here", ChatOptions(agent_id=fast), request_id="after")
        rest = await until_terminal(ws, 1)
    assert rest[-1].type == "final" and rest[-1].result().response == "still here"
    assert [e.seq for e in [*events, cancelled, *rest]] == list(range(1, 3 + len(rest) + 1))
    log = await remote.get_conversation_history(cancelled.conversation_id or "")
    assert [(m.role, m.content) for m in log.messages] == [("user", "stuck"), ("system", "turn cancelled")]


BAD_FRAMES: list[tuple[str, str, int]] = [
    ("not json", "{nope", 400),
    ("not an object", "[1, 2]", 422),
    ("unknown type", '{"type": "shout", "request_id": "a"}', 422),
    ("missing text", '{"type": "chat", "request_id": "a", "agent_id": "x"}', 422),
    ("missing request id", '{"type": "chat", "text": "hi"}', 422),
    ("bad agent id", '{"type": "chat", "request_id": "a", "text": "hi", "agent_id": "a b"}', 422),
    ("wrong type", '{"type": "chat", "request_id": "a", "text": 5}', 422),
    ("unknown field", '{"type": "chat", "request_id": "a", "text": "hi", "colour": 1}', 422),
    ("bad model", '{"type": "chat", "request_id": "m", "text": "hi", "model": "nope"}', 422),
    ("cancel unknown", '{"type": "cancel", "request_id": "ghost"}', 404),
    ("unknown conversation", '{"type": "chat", "request_id": "c", "text": "hi", "conversation_id": "conv_x"}', 404),
]


async def test_bad_frames_get_problem_events_and_the_socket_stays_open(server: PenguinServer) -> None:
    async with connect(server.ws_url + f"{API}/chat/stream") as ws:
        for name, frame, status in BAD_FRAMES:
            await ws.send(frame)
            event = orjson.loads(await ws.recv())
            while event["type"] == "accepted":  # frames that validate are accepted, then fail in the core
                event = orjson.loads(await ws.recv())
            assert event["type"] == "error", name
            assert event["problem"]["status"] == status, (name, event)
            assert event["problem"]["detail"], name
        await ws.send(b"binary")
        assert orjson.loads(await ws.recv())["problem"]["status"] == 422
        await ws.send(orjson.dumps({"type": "chat", "request_id": "ok", "text": "alive"}).decode())
        events = [orjson.loads(await ws.recv()) for _ in range(4)]
    assert [e["type"] for e in events] == ["accepted", "start", "delta", "final"]
    assert events[-1]["response"] == "alive"


async def test_duplicate_request_id_in_flight_is_refused(remote: PenguinClient) -> None:
    agent_id = unique("dup")
    await remote.create_agent(agent_id, model_parameters={"delay": 0.3})
    async with remote.chat_stream_socket() as ws:
        await ws.chat("first", ChatOptions(agent_id=agent_id), request_id="same")
        await ws.chat("second", ChatOptions(agent_id=agent_id), request_id="same")
        events = await until_terminal(ws, 2)
    errors = [e for e in events if e.type == "error"]
    assert len(errors) == 1 and errors[0].problem is not None and errors[0].problem["status"] == 409
    assert [e.result().response for e in events if e.type == "final"] == ["first"]


async def test_slow_reader_is_disconnected_without_blocking_others(app_core: PenguinCore) -> None:
    await app_core.create_agent("firehose", model_parameters={"chunk": 1})
    text = "x" * 60_000  # 60 000 delta events (~10 MB), far more than any buffer between the two holds
    async with (
        InProcessServer(app_core, ws_send_queue=8, send_buffer=4096) as srv,
        PenguinClient(srv.url) as client,
    ):
        url = srv.url.replace("http://", "ws://") + f"{API}/chat/stream"
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        async with connect(url, sock=sock, max_queue=1) as slow:  # never reads until the end
            await slow.send(orjson.dumps({"type": "chat", "request_id": "flood", "agent_id": "firehose",
                                          "text": text}).decode())
            async with client.chat_stream_socket() as fast:
                for i in range(3):  # other clients are served while the slow one is stuck
                    await fast.chat(f"quick {i}", ChatOptions(agent_id=f"quick{i}"))
                events = await until_terminal(fast, 3)
                assert sorted(e.result().response for e in events if e.type == "final") == [
                    "quick 0", "quick 1", "quick 2"]

            async def overflowed() -> bool:
                return (await client.health()).websocket.overflow_disconnects == 1

            await eventually(overflowed)
            received: list[dict[str, object]] = []
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(10):
                    while True:
                        received.append(orjson.loads(await slow.recv()))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert [e["seq"] for e in received] == list(range(1, len(received) + 1))  # no gap before the close
            assert received[0]["type"] == "accepted" and "final" not in [e["type"] for e in received]
        # The chat was accepted before the disconnect, so it still completes and is recorded.

        async def idle() -> bool:
            return (await client.health()).inflight_turns == 0

        await eventually(idle, timeout=20)
        assert [(m.role, m.content) for m in await app_core.history("firehose")] == [
            ("user", text), ("assistant", text)]
        assert (await client.health()).websocket.overflow_disconnects == 1
