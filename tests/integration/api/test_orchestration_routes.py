"""The multi-agent routes (messages, rooms, coordinator, sub-agents, memory, approvals) on a real server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import orjson
import pytest
from penguin_server import eventually
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

API = "/api/v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def receipt_status(http: httpx.AsyncClient, message_id: str) -> str:
    return str((await http.get(f"{API}/messages/{message_id}/receipt")).json()["status"])


async def test_messages_and_receipts(http: httpx.AsyncClient) -> None:
    agent_id = unique("inbox")
    await http.post(f"{API}/agents", json={"agent_id": agent_id})
    sent = await http.post(f"{API}/messages", json={"recipient": agent_id, "content": "ping", "channel": "ops"})
    assert sent.status_code == 202, sent.text
    receipt = sent.json()
    assert receipt["status"] == "queued" and receipt["recipient"] == agent_id and receipt["sender"] == "human"

    async def processed() -> bool:
        return await receipt_status(http, receipt["message_id"]) == "processed"

    await eventually(processed)
    message = (await http.get(f"{API}/messages/{receipt['message_id']}")).json()
    assert message["content"] == "ping" and message["channel"] == "ops"
    log = (await http.get(f"{API}/messages", params={"agent_id": agent_id})).json()
    reply = [e for e in log if e["sender"] == agent_id and e["message_type"] == "message"
             and e["correlation_id"] == receipt["message_id"]]
    assert reply and reply[0]["content"] == "ping" and reply[0]["recipient"] == "human"
    receipts = (await http.get(f"{API}/receipts", params={"message_id": receipt["message_id"]})).json()
    assert [r["status"] for r in receipts] == ["processed"]
    unknown = await http.post(f"{API}/messages", json={"recipient": "nobody-x", "content": "hi"})
    assert unknown.status_code == 404 and unknown.json()["field"] == "recipient"
    bad = await http.post(f"{API}/messages", json={"recipient": "not valid!", "content": "hi"})
    assert bad.status_code == 422


async def test_rooms(http: httpx.AsyncClient) -> None:
    room, a, b = unique("room"), unique("member"), unique("member")
    for agent_id in (a, b):
        await http.post(f"{API}/agents", json={"agent_id": agent_id})
    created = await http.post(f"{API}/rooms", json={"name": room, "members": [a]})
    assert created.status_code == 201 and created.json()["members"] == [a]
    assert (await http.post(f"{API}/rooms/{room}/members", json={"agent_id": b})).json()["members"] == [a, b]
    assert room in [r["name"] for r in (await http.get(f"{API}/rooms", params={"member": b})).json()]
    post = await http.post(f"{API}/rooms/{room}/messages", json={"content": "standup", "sender": "human"})
    assert post.status_code == 202
    assert sorted(r["recipient"] for r in post.json()["receipts"]) == sorted([a, b])

    async def both_replied() -> bool:
        history = (await http.get(f"{API}/rooms/{room}/messages")).json()
        return {e["sender"] for e in history} >= {a, b}

    await eventually(both_replied)
    left = (await http.delete(f"{API}/rooms/{room}/members/{a}")).json()
    assert left["members"] == [b]
    assert (await http.get(f"{API}/rooms/{unique('none')}")).status_code == 404


async def test_coordinator(http: httpx.AsyncClient) -> None:
    role, first, second = unique("role"), unique("rr"), unique("rr")
    for agent_id in (first, second):
        await http.post(f"{API}/agents", json={"agent_id": agent_id})
    assigned = (await http.put(f"{API}/coordinator/roles/{role}", json={"agent_ids": [first, second]})).json()
    assert assigned == {"role": role, "agent_ids": [first, second]}
    assert (await http.get(f"{API}/coordinator/roles")).json()[role] == [first, second]
    answers = [(await http.post(f"{API}/coordinator/round-robin", json={"role": role, "text": f"q{i}"})).json()
               for i in range(2)]
    assert [a["agent_id"] for a in answers] == [first, second]
    assert [(a["status"], a["text"]) for a in answers] == [("processed", "q0"), ("processed", "q1")]
    chain = (await http.post(f"{API}/coordinator/chain", json={"roles": [role, role], "text": "draft"})).json()
    assert chain["status"] == "completed" and chain["output"] == "draft"
    assert [(step["input"], step["output"]) for step in chain["steps"]] == [("draft", "draft")] * 2
    broadcast = (await http.post(f"{API}/coordinator/broadcast", json={"text": "all hands",
                                                                       "agents": [first, second]})).json()
    assert sorted((a["agent_id"], a["text"]) for a in broadcast) == sorted([(first, "all hands"),
                                                                          (second, "all hands")])
    routes = await http.put(f"{API}/coordinator/routes", json={
        "rules": [{"name": "billing", "target": first, "contains": ["invoice"]}], "default": [second]})
    assert routes.status_code == 200, routes.text
    routed = (await http.post(f"{API}/coordinator/route", json={"text": "my invoice is wrong"})).json()
    assert routed["rule"] == "billing" and routed["answer"]["agent_id"] == first
    fallback = (await http.post(f"{API}/coordinator/route", json={"text": "hello"})).json()
    assert fallback["answer"]["agent_id"] == second
    bad_rule = await http.put(f"{API}/coordinator/routes", json={"rules": [{"contains": ["x"]}]})
    assert bad_rule.status_code == 422 and bad_rule.json()["field"] == "rules.0.name"
    cleared = (await http.delete(f"{API}/coordinator/roles/{role}", params={"agent_id": first})).json()
    assert cleared["agent_ids"] == [second]


async def test_subagents_and_delegation(http: httpx.AsyncClient) -> None:
    parent = unique("parent")
    await http.post(f"{API}/agents", json={"agent_id": parent, "persona": "You lead."})
    spawned = await http.post(f"{API}/agents/{parent}/subagents", json={"child_id": f"{parent}-kid"})
    assert spawned.status_code == 201
    child = spawned.json()
    assert child["parent_id"] == parent and child["system_prompt"] == "You lead."
    listed = (await http.get(f"{API}/agents/{parent}/subagents")).json()
    assert [c["agent_id"] for c in listed] == [child["agent_id"]]
    result = (await http.post(f"{API}/agents/{parent}/delegate", json={
        "child_id": child["agent_id"], "task": "summarise TASK_COMPLETE", "timeout": 20})).json()
    assert result["status"] == "completed" and result["child_id"] == child["agent_id"]
    again = (await http.get(f"{API}/delegations/{result['task_id']}")).json()
    assert again["task_id"] == result["task_id"] and again["status"] == "completed"
    assert (await http.post(f"{API}/agents/{child['agent_id']}/delegations/cancel")).json() == []
    usage = (await http.get(f"{API}/agents/{child['agent_id']}/usage")).json()
    assert usage["turns"] >= 1 and usage["total_tokens"] > 0
    stranger = await http.post(f"{API}/agents/{parent}/delegate", json={"child_id": "default", "task": "x"})
    assert stranger.status_code == 409


async def test_memory(http: httpx.AsyncClient) -> None:
    author = unique("librarian")
    await http.post(f"{API}/agents", json={"agent_id": author})
    created = await http.post(f"{API}/memory", json={
        "text": "The deploy window is Tuesday 14:00 UTC", "agent_id": author, "tags": ["ops"]})
    assert created.status_code == 201, created.text
    memory: dict[str, Any] = created.json()
    assert memory["author"] == author and memory["scope"] == "shared" and memory["tags"] == ["ops"]
    hits = (await http.get(f"{API}/memory/search", params={"q": "deploy window", "mode": "keyword"})).json()
    assert hits[0]["id"] == memory["id"] and hits[0]["score"] is not None
    listed = (await http.get(f"{API}/memory", params={"author": author})).json()
    assert [m["id"] for m in listed] == [memory["id"]]
    assert (await http.get(f"{API}/memory/{memory['id']}")).json()["text"] == memory["text"]
    updated = (await http.patch(f"{API}/memory/{memory['id']}", params={"agent_id": author},
                                json={"tags": ["ops", "deploy"]})).json()
    assert updated["tags"] == ["ops", "deploy"]
    stats = (await http.get(f"{API}/memory/stats")).json()
    assert stats["total"] >= 1 and stats["by_author"][author] == 1
    deleted = await http.delete(f"{API}/memory/{memory['id']}", params={"agent_id": author})
    assert deleted.status_code == 200
    assert (await http.get(f"{API}/memory/{memory['id']}")).status_code == 404
    assert (await http.get(f"{API}/memory/search", params={"q": ""})).status_code == 422


async def test_tool_approvals(http: httpx.AsyncClient) -> None:
    agent_id = unique("careful")
    await http.post(f"{API}/agents", json={
        "agent_id": agent_id, "model": "scripted:tool",
        "model_parameters": {"tool": "list_dir", "arguments": {"path": "."}},
        "tool_policy": {"require_approval": ["list_dir"]},
    })

    async def one_pending() -> list[dict[str, Any]]:
        waiting: list[dict[str, Any]] = []

        async def found() -> bool:
            waiting[:] = (await http.get(f"{API}/approvals", params={"agent_id": agent_id})).json()
            return len(waiting) == 1

        await eventually(found)
        return waiting

    approved_chat = asyncio.create_task(http.post(f"{API}/chat", json={"text": "look", "agent_id": agent_id}))
    (request,) = await one_pending()
    assert request["tool"] == "list_dir" and request["state"] == "pending"
    assert (await http.post(f"{API}/approvals/{request['id']}/approve")).json()["state"] == "approved"
    reply = (await approved_chat).json()
    assert reply["tool_calls"][0]["name"] == "list_dir" and not reply["tool_calls"][0].get("error")

    denied_chat = asyncio.create_task(http.post(f"{API}/chat", json={"text": "again", "agent_id": agent_id}))
    (request,) = await one_pending()
    denied = (await http.post(f"{API}/approvals/{request['id']}/deny", json={"reason": "not now"})).json()
    assert denied["state"] == "denied"
    assert "not now" in (await denied_chat).json()["response"]
    again = await http.post(f"{API}/approvals/{request['id']}/approve")
    assert again.status_code in (404, 409)
    stats = (await http.get(f"{API}/tools/stats", params={"agent_id": agent_id})).json()
    assert stats["agents"][agent_id]["allowed"] == 1 and stats["agents"][agent_id]["denied"] == 1


async def test_message_stream_websocket(http: httpx.AsyncClient, server: Any) -> None:
    agent_id = unique("watched")
    await http.post(f"{API}/agents", json={"agent_id": agent_id})
    url = f"{server.ws_url}{API}/ws/messages?agent_id={agent_id}&message_type=message"
    async with connect(url) as ws:
        sent = (await http.post(f"{API}/messages", json={"recipient": agent_id, "content": "watch this"})).json()
        frames = [orjson.loads(await ws.recv()) for _ in range(2)]
    assert [(f["type"], f["sender"], f["content"]) for f in frames] == [
        ("envelope", "human", "watch this"), ("envelope", agent_id, "watch this")]
    assert frames[0]["id"] == sent["message_id"] and frames[1]["seq"] > frames[0]["seq"]
    async with connect(f"{url}&since_seq={frames[0]['seq']}") as ws:  # resume after the first one
        replayed = orjson.loads(await ws.recv())
    assert replayed["id"] == frames[1]["id"]
    async with connect(f"{server.ws_url}{API}/ws/messages?agent_id=bad%20id") as ws:
        error = orjson.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert error["type"] == "error" and error["problem"]["field"] == "agent_id"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
