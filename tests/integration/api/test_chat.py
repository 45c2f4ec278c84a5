"""``POST /api/v1/chat`` against a real server: JSON and SSE answers, persona isolation, ordering."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
from penguin_server import eventually

API = "/api/v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def sse_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every server-sent event of ``response``."""
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "", ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif not line and data:
            events.append((name, orjson.loads(data)))
            name, data = "", ""
    return events


async def test_chat_returns_the_reply_and_creates_the_agent_once(http: httpx.AsyncClient) -> None:
    agent_id = unique("new")
    first = await http.post(f"{API}/chat", json={"text": "hello there", "agent_id": agent_id, "streaming": False})
    assert first.status_code == 200
    body = first.json()
    assert body["response"] == "hello there"
    assert body["agent_id"] == agent_id and body["created"] is True
    assert body["tool_calls"] == [] and body["status"] == "completed" and body["model"] == "scripted:echo"
    assert body["usage"]["total_tokens"] == body["usage"]["input_tokens"] + body["usage"]["output_tokens"] > 0
    assert set(body["timings"]) == {"total", "model", "tools", "queued"}
    second = (await http.post(f"{API}/chat", json={"text": "again", "agent_id": agent_id})).json()
    assert second["created"] is False and second["conversation_id"] == body["conversation_id"]


async def test_default_agent_context_model_and_iterations(http: httpx.AsyncClient) -> None:
    body = (await http.post(f"{API}/chat", json={
        "text": "with context", "context": {"repository": "penguin"}, "model": "scripted:echo", "max_iterations": 2,
    })).json()
    assert body["agent_id"] == "default" and body["response"] == "with context"
    history = (await http.get(f"{API}/conversations/{body['conversation_id']}/history",
                              params={"after_seq": 0, "limit": 1000})).json()["messages"]
    user = [m for m in history if m["turn_id"] == body["turn_id"] and m["role"] == "user"]
    assert user[0]["metadata"] == {"context": {"repository": "penguin"}}


async def test_support_continues_one_conversation_engineering_gets_its_own(http: httpx.AsyncClient) -> None:
    support, engineering = unique("support"), unique("engineering")
    s1 = (await http.post(f"{API}/chat", json={"text": "ticket 1", "agent_id": support})).json()
    e1 = (await http.post(f"{API}/chat", json={"text": "deploy plan", "agent_id": engineering})).json()
    s2 = (await http.post(f"{API}/chat", json={"text": "ticket 2", "agent_id": support})).json()
    assert s1["conversation_id"] == s2["conversation_id"] != e1["conversation_id"]
    support_log = (await http.get(f"{API}/conversations/{s1['conversation_id']}/history")).json()["messages"]
    engineering_log = (await http.get(f"{API}/conversations/{e1['conversation_id']}/history")).json()["messages"]
    assert [m["content"] for m in support_log] == ["ticket 1", "ticket 1", "ticket 2", "ticket 2"]
    assert [m["content"] for m in engineering_log] == ["deploy plan", "deploy plan"]
    assert {m["agent_id"] for m in support_log} == {support}
    assert {m["agent_id"] for m in engineering_log} == {engineering}


async def test_streaming_chat_is_server_sent_events(http: httpx.AsyncClient) -> None:
    agent_id = unique("stream")
    await http.post(f"{API}/agents", json={"agent_id": agent_id, "model_parameters": {"chunk": 3}})
    text = "stream this reply in pieces"
    async with http.stream("POST", f"{API}/chat", json={"text": text, "agent_id": agent_id, "streaming": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = await sse_events(r)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "final" and set(names[1:-1]) == {"delta"}
    assert [data["seq"] for _, data in events] == list(range(1, len(events) + 1))
    assert "".join(data["text"] for name, data in events if name == "delta") == text
    assert all(len(data["text"]) <= 3 for name, data in events if name == "delta")
    final = events[-1][1]
    assert final["response"] == text and final["agent_id"] == agent_id
    assert {data["conversation_id"] for _, data in events} == {final["conversation_id"]}


async def test_streaming_bad_input_is_a_plain_problem_and_model_failure_an_error_event(
    http: httpx.AsyncClient,
) -> None:
    bad = await http.post(f"{API}/chat", json={"text": "x", "agent_id": "no spaces", "streaming": True})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    agent_id = unique("broken")
    await http.post(f"{API}/agents", json={"agent_id": agent_id, "model": "scripted:error"})
    async with http.stream("POST", f"{API}/chat", json={"text": "x", "agent_id": agent_id, "streaming": True}) as r:
        assert r.status_code == 200
        events = await sse_events(r)
    assert [name for name, _ in events] == ["start", "error"]
    error = events[-1][1]
    assert error["agent_id"] == agent_id and error["seq"] == 2
    assert error["problem"]["status"] == 502 and "scripted failure" in error["problem"]["detail"]
    plain = await http.post(f"{API}/chat", json={"text": "x", "agent_id": agent_id})
    assert plain.status_code == 502 and plain.json()["type"].endswith("/model-error")
    log = (await http.get(f"{API}/conversations/{error['conversation_id']}/history")).json()["messages"]
    assert [(m["role"], m["message_type"]) for m in log] == [("user", "message"), ("system", "status")] * 2


async def wait_for(http: httpx.AsyncClient, agent_id: str, *, queued: int) -> None:
    """Until the agent has a running turn and ``queued`` more waiting for the writer slot."""

    async def reached() -> bool:
        status = (await http.get(f"{API}/agents/{agent_id}")).json()["status"]
        return bool(status["running"]) and status["queued"] == queued

    await eventually(reached, interval=0.005)


async def test_concurrent_chats_to_one_agent_run_in_arrival_order(http: httpx.AsyncClient) -> None:
    agent_id = unique("serial")
    # Each turn takes 0.25 s, far longer than sending the next request and seeing it queued.
    await http.post(f"{API}/agents", json={"agent_id": agent_id, "model_parameters": {"delay": 0.25}})
    texts = [f"message {i}" for i in range(4)]
    sent = []
    for i, text in enumerate(texts):
        sent.append(asyncio.create_task(http.post(f"{API}/chat", json={"text": text, "agent_id": agent_id})))
        await wait_for(http, agent_id, queued=i)  # the server has it in line before the next is sent
    replies = [(await r).json() for r in sent]
    assert [r["response"] for r in replies] == texts
    assert replies[-1]["timings"]["queued"] > replies[0]["timings"]["queued"]
    log = (await http.get(f"{API}/conversations/{replies[0]['conversation_id']}/history")).json()["messages"]
    assert [(m["role"], m["content"]) for m in log] == [(role, t) for t in texts for role in ("user", "assistant")]


async def test_a_burst_to_one_agent_is_serialized_and_each_gets_its_own_reply(http: httpx.AsyncClient) -> None:
    agent_id = unique("burst")
    texts = [f"burst {i}" for i in range(12)]
    replies = await asyncio.gather(
        *(http.post(f"{API}/chat", json={"text": t, "agent_id": agent_id}) for t in texts)
    )
    assert sorted(r.json()["response"] for r in replies) == sorted(texts)
    assert all(r.json()["response"] == t for r, t in zip(replies, texts, strict=True))
    log = (await http.get(f"{API}/conversations/{replies[0].json()['conversation_id']}/history")).json()["messages"]
    assert len(log) == 2 * len(texts)
    for user, assistant in zip(log[::2], log[1::2], strict=True):  # never interleaved
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"] == assistant["content"] and user["turn_id"] == assistant["turn_id"]


async def test_cancel_an_in_flight_turn_is_recorded(http: httpx.AsyncClient) -> None:
    agent_id = unique("cancel")
    await http.post(f"{API}/agents", json={"agent_id": agent_id, "model_parameters": {"delay": 10}})
    pending = asyncio.create_task(http.post(f"{API}/chat", json={"text": "never answered", "agent_id": agent_id}))
    await wait_for(http, agent_id, queued=0)
    cancelled = (await http.post(f"{API}/agents/{agent_id}/cancel")).json()
    assert len(cancelled["cancelled"]) == 1
    answer = await pending
    assert answer.status_code == 409 and answer.json()["type"].endswith("/turn-cancelled")
    log = (await http.get(f"{API}/conversations/{cancelled['cancelled'][0]}/history")).json()["messages"]
    assert [(m["role"], m["content"]) for m in log] == [("user", "never answered"), ("system", "turn cancelled")]


async def test_paused_agent_queues_until_resumed(http: httpx.AsyncClient) -> None:
    agent_id = unique("paused")
    await http.post(f"{API}/agents", json={"agent_id": agent_id, "paused": True})
    pending = asyncio.create_task(http.post(f"{API}/chat", json={"text": "wait for me", "agent_id": agent_id}))
    done, _ = await asyncio.wait((pending,), timeout=0.3)
    assert not done  # held at the pause gate, not rejected
    await http.post(f"{API}/agents/{agent_id}/resume")
    assert (await pending).json()["response"] == "wait for me"
