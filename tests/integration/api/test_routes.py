"""Every REST route against a real ``penguin serve`` process (scripted:echo model)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

import penguin

API = "/api/v1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_health_version_openapi_and_docs(http: httpx.AsyncClient) -> None:
    health = (await http.get(f"{API}/health")).json()
    assert health["status"] == "ok"
    assert health["version"] == penguin.__version__
    assert set(health["websocket"]) == {"connections", "accepted_total", "overflow_disconnects"}
    assert (await http.get(f"{API}/version")).json() == {"version": penguin.__version__, "api": "v1"}
    spec = (await http.get("/openapi.json")).json()
    expected = {
        "/api/v1/chat": {"post"},
        "/api/v1/agents": {"get", "post"},
        "/api/v1/agents/{agent_id}": {"get", "patch", "delete"},
        "/api/v1/agents/{agent_id}/pause": {"post"},
        "/api/v1/agents/{agent_id}/resume": {"post"},
        "/api/v1/agents/{agent_id}/cancel": {"post"},
        "/api/v1/agents/{agent_id}/conversations": {"get"},
        "/api/v1/conversations/{conversation_id}": {"get"},
        "/api/v1/conversations/{conversation_id}/history": {"get"},
        "/api/v1/conversations/{conversation_id}/checkpoints": {"get", "post"},
        "/api/v1/checkpoints/{checkpoint_id}/rollback": {"post"},
        "/api/v1/checkpoints/{checkpoint_id}/branch": {"post"},
        "/api/v1/tasks": {"get", "post"},
        "/api/v1/tasks/{task_id}": {"get"},
        "/api/v1/tasks/{task_id}/cancel": {"post"},
        "/api/v1/health": {"get"},
        "/api/v1/version": {"get"},
        # Multi-agent routes (test_orchestration_routes.py).
        "/api/v1/messages": {"get", "post"},
        "/api/v1/messages/{message_id}": {"get"},
        "/api/v1/messages/{message_id}/receipt": {"get"},
        "/api/v1/receipts": {"get"},
        "/api/v1/rooms": {"get", "post"},
        "/api/v1/rooms/{name}": {"get"},
        "/api/v1/rooms/{name}/members": {"post"},
        "/api/v1/rooms/{name}/members/{agent_id}": {"delete"},
        "/api/v1/rooms/{name}/messages": {"get", "post"},
        "/api/v1/coordinator/roles": {"get"},
        "/api/v1/coordinator/roles/{role}": {"delete", "put"},
        "/api/v1/coordinator/round-robin": {"post"},
        "/api/v1/coordinator/chain": {"post"},
        "/api/v1/coordinator/broadcast": {"post"},
        "/api/v1/coordinator/routes": {"put"},
        "/api/v1/coordinator/route": {"post"},
        "/api/v1/agents/{agent_id}/subagents": {"get", "post"},
        "/api/v1/agents/{agent_id}/delegate": {"post"},
        "/api/v1/delegations/{task_id}": {"get"},
        "/api/v1/agents/{agent_id}/delegations/cancel": {"post"},
        "/api/v1/agents/{agent_id}/usage": {"get"},
        "/api/v1/memory": {"get", "post"},
        "/api/v1/memory/search": {"get"},
        "/api/v1/memory/stats": {"get"},
        "/api/v1/memory/{memory_id}": {"get", "patch", "delete"},
        "/api/v1/approvals": {"get"},
        "/api/v1/approvals/{approval_id}/approve": {"post"},
        "/api/v1/approvals/{approval_id}/deny": {"post"},
        "/api/v1/tools/stats": {"get"},
        # Telemetry (test_telemetry.py, test_observability.py).
        "/api/v1/telemetry": {"get"},
        "/metrics": {"get"},
        # Named providers (tests/unit/models/test_providers.py).
        "/api/v1/providers": {"get"},
        "/api/v1/providers/{name}": {"get", "put", "delete"},
        # The OpenAI-compatible face (test_openai_face.py).
        "/v1/chat/completions": {"post"},
        "/v1/models": {"get"},
        "/v1/models/{model}": {"get"},
        # The A2A face (test_a2a_face.py).
        "/.well-known/agent-card.json": {"get"},
        "/a2a/{agent_id}/.well-known/agent-card.json": {"get"},
        "/a2a": {"post"},
        "/a2a/{agent_id}": {"post"},
    }
    # Every route is listed here and tested: a new route must be added to this map (and to a test).
    assert {path: set(ops) for path, ops in spec["paths"].items()} == expected
    not_found = spec["paths"]["/api/v1/agents/{agent_id}"]["get"]["responses"]["404"]
    assert "application/problem+json" in not_found["content"]
    docs = await http.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


async def test_agent_lifecycle(http: httpx.AsyncClient) -> None:
    agent_id = unique("crud")
    created = await http.post(f"{API}/agents", json={
        "agent_id": agent_id, "persona": "You answer billing questions.", "roles": ["billing"],
        "model": "scripted:echo", "model_parameters": {"temperature": 0.2}, "metadata": {"team": "support"},
        "tool_policy": {"deny": ["run_shell"], "rate_per_minute": 30},
    })
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["agent_id"] == agent_id
    assert body["system_prompt"] == "You answer billing questions."
    assert body["roles"] == ["billing"]
    assert body["model"] == "scripted:echo"
    assert body["model_parameters"] == {"temperature": 0.2}
    assert body["metadata"] == {"team": "support"}
    assert body["tool_policy"]["deny"] == ["run_shell"] and body["tool_policy"]["rate_per_minute"] == 30
    assert body["paused"] is False

    listed = (await http.get(f"{API}/agents")).json()
    assert agent_id in [a["agent_id"] for a in listed] and "default" in [a["agent_id"] for a in listed]
    by_role = (await http.get(f"{API}/agents", params={"role": "billing"})).json()
    assert [a["agent_id"] for a in by_role] == [agent_id]

    got = (await http.get(f"{API}/agents/{agent_id}")).json()
    assert got["status"] == {"paused": False, "running": [], "queued": 0}

    patched = (await http.patch(f"{API}/agents/{agent_id}", json={"system_prompt": "Be terse.", "model": None})).json()
    assert patched["system_prompt"] == "Be terse." and patched["model"] is None
    assert patched["roles"] == ["billing"]  # untouched fields stay

    paused = (await http.post(f"{API}/agents/{agent_id}/pause")).json()
    assert paused["paused"] is True
    resumed = (await http.post(f"{API}/agents/{agent_id}/resume")).json()
    assert resumed["paused"] is False
    cancel = (await http.post(f"{API}/agents/{agent_id}/cancel")).json()
    assert cancel == {"agent_id": agent_id, "cancelled": []}

    removed = await http.delete(f"{API}/agents/{agent_id}")
    assert removed.status_code == 200 and removed.json()["agent_id"] == agent_id
    gone = await http.get(f"{API}/agents/{agent_id}")
    assert gone.status_code == 404 and gone.json()["type"].endswith("/agent-not-found")


async def test_conversations_history_and_paging(http: httpx.AsyncClient) -> None:
    agent_id = unique("hist")
    first = (await http.post(f"{API}/chat", json={"text": "one", "agent_id": agent_id})).json()
    conversation_id = first["conversation_id"]
    for text in ("two", "three"):
        await http.post(f"{API}/chat", json={"text": text, "agent_id": agent_id})

    convs = (await http.get(f"{API}/agents/{agent_id}/conversations")).json()
    assert [c["id"] for c in convs] == [conversation_id]
    assert convs[0]["message_count"] == 6
    conv = (await http.get(f"{API}/conversations/{conversation_id}")).json()
    assert conv["agent_id"] == agent_id and conv["kind"] == "main"

    page = (await http.get(f"{API}/conversations/{conversation_id}/history")).json()
    assert page["next_after_seq"] is None
    messages = page["messages"]
    assert [(m["seq"], m["role"], m["content"]) for m in messages] == [
        (1, "user", "one"), (2, "assistant", "one"), (3, "user", "two"),
        (4, "assistant", "two"), (5, "user", "three"), (6, "assistant", "three"),
    ]
    for m in messages:
        assert m["agent_id"] == agent_id and m["message_type"] == "message"
        assert {"recipient_id", "channel", "created_at"} <= set(m)
    assert messages[0]["recipient_id"] == agent_id and messages[1]["recipient_id"] == "human"

    seen: list[int] = []
    after: int | None = 0
    while after is not None:
        chunk = (await http.get(f"{API}/conversations/{conversation_id}/history",
                                params={"after_seq": after, "limit": 4})).json()
        seen += [m["seq"] for m in chunk["messages"]]
        after = chunk["next_after_seq"]
    assert seen == [1, 2, 3, 4, 5, 6]

    only_status = (await http.get(f"{API}/conversations/{conversation_id}/history",
                                          params={"message_type": "status"})).json()
    assert only_status["messages"] == []
    other_agent = (await http.get(f"{API}/conversations/{conversation_id}/history",
                                  params={"agent_id": "someone-else"})).json()
    assert other_agent["messages"] == []
    by_channel = (await http.get(f"{API}/conversations/{conversation_id}/history",
                                 params={"channel": "ops"})).json()
    assert by_channel["messages"] == []


async def test_checkpoints_rollback_and_branch(http: httpx.AsyncClient) -> None:
    agent_id = unique("cp")
    conversation_id = (await http.post(f"{API}/chat", json={"text": "keep", "agent_id": agent_id})).json()[
        "conversation_id"]
    created = await http.post(f"{API}/conversations/{conversation_id}/checkpoints", json={"name": "after keep"})
    assert created.status_code == 201
    cp = created.json()
    assert cp["conversation_id"] == conversation_id and cp["seq"] == 2 and cp["name"] == "after keep"
    await http.post(f"{API}/chat", json={"text": "drop", "agent_id": agent_id})
    listed = (await http.get(f"{API}/conversations/{conversation_id}/checkpoints")).json()
    assert [c["id"] for c in listed] == [cp["id"]]

    branch = await http.post(f"{API}/checkpoints/{cp['id']}/branch", json={"title": "what if"})
    assert branch.status_code == 201
    branched = branch.json()
    assert branched["kind"] == "branch" and branched["title"] == "what if" and branched["agent_id"] == agent_id
    branch_history = (await http.get(f"{API}/conversations/{branched['id']}/history")).json()["messages"]
    assert [m["content"] for m in branch_history] == ["keep", "keep"]

    rolled = (await http.post(f"{API}/checkpoints/{cp['id']}/rollback")).json()
    assert rolled["conversation"]["id"] == conversation_id and rolled["conversation"]["message_count"] == 2
    archive = rolled["archive"]
    assert archive["kind"] == "archive"
    kept = (await http.get(f"{API}/conversations/{conversation_id}/history")).json()["messages"]
    assert [m["content"] for m in kept] == ["keep", "keep"]
    archived = (await http.get(f"{API}/conversations/{archive['id']}/history")).json()["messages"]
    assert [m["content"] for m in archived] == ["keep", "keep", "drop", "drop"]
    convs = {c["id"] for c in (await http.get(f"{API}/agents/{agent_id}/conversations")).json()}
    assert convs == {conversation_id, branched["id"], archive["id"]}


async def test_tasks(http: httpx.AsyncClient) -> None:
    agent_id = unique("worker")
    await http.post(f"{API}/agents", json={"agent_id": agent_id, "roles": [f"{agent_id}-role"]})
    started = await http.post(f"{API}/tasks", json={"prompt": "do it TASK_COMPLETE", "agent_id": agent_id,
                                                    "max_iterations": 3, "context": {"ticket": 7}})
    assert started.status_code == 202, started.text
    task = started.json()
    assert task["agent_id"] == agent_id and task["status"] in ("queued", "running", "completed")
    while task["status"] not in ("completed", "failed", "cancelled"):
        await asyncio.sleep(0.01)
        task = (await http.get(f"{API}/tasks/{task['id']}")).json()
    assert task["status"] == "completed" and task["result"] == "do it"
    assert task["options"]["context"] == {"ticket": 7}

    await http.patch(f"{API}/agents/{agent_id}", json={"model_parameters": {"delay": 5}})
    by_role = (await http.post(f"{API}/tasks", json={"prompt": "slow", "agent_role": f"{agent_id}-role",
                                                     "max_iterations": 1000})).json()
    assert by_role["agent_id"] == agent_id
    cancelled = await http.post(f"{API}/tasks/{by_role['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await http.post(f"{API}/tasks/{by_role['id']}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]

    mine = (await http.get(f"{API}/tasks", params={"agent_id": agent_id})).json()
    assert [t["id"] for t in mine] == [by_role["id"], task["id"]]
    assert all(t["agent_id"] == agent_id for t in mine)
    everyone = (await http.get(f"{API}/tasks")).json()
    assert {task["id"], by_role["id"]} <= {t["id"] for t in everyone}


async def test_create_agent_with_exist_ok_upserts(http: httpx.AsyncClient) -> None:
    agent = unique("upsert")
    created = await http.post(f"{API}/agents", json={"agent_id": agent, "system_prompt": "v1"})
    assert created.status_code == 201
    taken = await http.post(f"{API}/agents", json={"agent_id": agent, "system_prompt": "v2"})
    assert taken.status_code == 409 and "exist_ok" in taken.json()["detail"]
    upserted = await http.post(f"{API}/agents", params={"exist_ok": "true"},
                               json={"agent_id": agent, "system_prompt": "v2"})
    assert upserted.status_code == 201
    assert upserted.json()["system_prompt"] == "v2"
    assert upserted.json()["created_at"] == created.json()["created_at"]
    bad = await http.post(f"{API}/agents", params={"exist_ok": "maybe"}, json={"agent_id": agent})
    assert bad.status_code == 422
