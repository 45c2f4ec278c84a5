"""The A2A face, spoken to by the ``a2a-sdk`` client (protocol 1.0, JSON-RPC) against ``penguin serve``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types import GetTaskRequest, Message, Part, Role, SendMessageRequest, StreamResponse, TaskState
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError
from penguin_server import PenguinServer


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


def message(text: str, context_id: str | None = None, **metadata: str) -> SendMessageRequest:
    msg = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])
    if context_id:
        msg.context_id = context_id
    for key, value in metadata.items():
        msg.metadata[key] = value
    return SendMessageRequest(message=msg)


async def events(client: object, request: SendMessageRequest) -> list[StreamResponse]:
    return [event async for event in client.send_message(request)]  # type: ignore[attr-defined]


async def test_cards_directory_and_per_agent(server: PenguinServer, http: httpx.AsyncClient) -> None:
    await http.post(f"{server.url}/api/v1/agents", json={"agent_id": "a2a-card", "roles": ["support"],
                                                          "system_prompt": "You answer support questions."})
    directory = (await http.get(f"{server.url}/.well-known/agent-card.json")).json()
    assert directory["supportedInterfaces"] == [
        {"url": f"{server.url}/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}]
    assert {"id": "a2a-card", "name": "a2a-card", "description": "You answer support questions.",
            "tags": ["support"]} in directory["skills"]
    card = (await http.get(f"{server.url}/a2a/a2a-card/.well-known/agent-card.json")).json()
    assert card["name"] == "a2a-card" and card["capabilities"]["streaming"] is True
    assert card["supportedInterfaces"][0]["url"] == f"{server.url}/a2a/a2a-card"
    missing = await http.get(f"{server.url}/a2a/nobody-here/.well-known/agent-card.json")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


async def test_a_two_turn_conversation_keeps_the_context(server: PenguinServer, http: httpx.AsyncClient) -> None:
    await http.post(f"{server.url}/api/v1/agents", json={"agent_id": "a2a-chat"})
    client = await create_client(f"{server.url}/a2a/a2a-chat", ClientConfig(streaming=False, httpx_client=http))
    first = await events(client, message("my name is Ada"))
    task = first[0].task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert task.status.message.parts[0].text == "my name is Ada"  # scripted:echo
    assert task.artifacts[0].parts[0].text == "my name is Ada"
    second = (await events(client, message("what is my name?", task.context_id)))[0].task
    assert second.context_id == task.context_id and second.id != task.id
    assert second.status.message.parts[0].text == "what is my name?"

    fetched = await client.get_task(GetTaskRequest(id=second.id))
    assert fetched.status.state == TaskState.TASK_STATE_COMPLETED
    assert [(m.role, m.parts[0].text) for m in fetched.history] == [
        (Role.ROLE_USER, "what is my name?"), (Role.ROLE_AGENT, "what is my name?")]
    history = (await http.get(f"{server.url}/api/v1/conversations/{task.context_id}/history")).json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["my name is Ada", "what is my name?"]
    with pytest.raises(TaskNotFoundError):
        await client.get_task(GetTaskRequest(id=f"{task.context_id}:turn_nope"))
    await client.close()


async def test_streaming_two_turns(server: PenguinServer, http: httpx.AsyncClient) -> None:
    await http.post(f"{server.url}/api/v1/agents", json={"agent_id": "a2a-stream"})
    client = await create_client(f"{server.url}/a2a/a2a-stream", ClientConfig(streaming=True, httpx_client=http))
    context_id = None
    for text in ("first streamed turn", "second streamed turn"):
        got = await events(client, message(text, context_id))
        assert got[0].task.status.state == TaskState.TASK_STATE_WORKING
        context_id = context_id or got[0].task.context_id
        assert got[0].task.context_id == context_id
        streamed = "".join(e.artifact_update.artifact.parts[0].text for e in got if e.HasField("artifact_update"))
        assert streamed == text
        final = got[-1].status_update
        assert final.status.state == TaskState.TASK_STATE_COMPLETED
        assert final.status.message.parts[0].text == text
    await client.close()


async def test_the_directory_endpoint_routes_by_metadata_and_failures_are_failed_tasks(
    server: PenguinServer, http: httpx.AsyncClient
) -> None:
    await http.post(f"{server.url}/api/v1/agents", json={"agent_id": "a2a-broken", "model": "scripted:error"})
    client = await create_client(server.url, ClientConfig(streaming=False, httpx_client=http))
    routed = (await events(client, message("hello directory", agent_id="a2a-routed")))[0].task
    assert routed.metadata["agent_id"] == "a2a-routed"
    streaming = await create_client(server.url, ClientConfig(streaming=True, httpx_client=http))
    failed = await events(streaming, message("x", agent_id="a2a-broken"))
    assert failed[-1].status_update.status.state == TaskState.TASK_STATE_FAILED
    assert "scripted failure" in failed[-1].status_update.status.message.parts[0].text
    with pytest.raises(InvalidParamsError, match="invalid-agent-id"):
        await events(client, message("x", agent_id="not valid!"))
    await client.close()
    await streaming.close()


async def test_bad_json_rpc_is_answered_with_json_rpc_errors(server: PenguinServer, http: httpx.AsyncClient) -> None:
    url = f"{server.url}/a2a/a2a-chat"

    async def call(body: object) -> dict[str, object]:
        reply = await http.post(url, json=body)
        assert reply.status_code == 200
        error: dict[str, object] = reply.json()["error"]
        return error

    assert (await call({"jsonrpc": "2.0", "id": 1, "method": "Nope", "params": {}}))["code"] == -32601
    assert (await call({"id": 1, "method": "SendMessage"}))["code"] == -32600
    assert (await call({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}}))["code"] == -32602
    no_text = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage",
               "params": {"message": {"messageId": "m", "role": "ROLE_USER", "parts": [{"data": {}}]}}}
    assert (await call(no_text))["code"] == -32602
    foreign = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
        "messageId": "m", "role": "ROLE_USER", "contextId": "conv_nope", "parts": [{"text": "x"}]}}}
    assert (await call(foreign))["code"] == -32602
    parse = await http.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert parse.json()["error"]["code"] == -32700
