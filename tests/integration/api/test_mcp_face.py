"""Penguin as an MCP server, spoken to by the ``mcp`` client over streamable HTTP and over stdio."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from penguin_server import PenguinServer, penguin_executable


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PenguinServer]:
    proc = PenguinServer(tmp_path_factory.mktemp("mcp-face"), env={"PENGUIN_API_KEY": "mcp-key"}).start()
    yield proc
    proc.stop()


def payload(result: Any) -> Any:
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


async def two_turns(client: Client, agent_id: str) -> None:
    """The conversation every transport must hold: two turns, remembered by the agent."""
    names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"list_agents", "chat", "send_message", "run_task", "get_task"}
    first = payload(await client.call_tool("chat", {"agent_id": agent_id, "text": "my name is Ada"}))
    assert first["response"] == "my name is Ada" and first["agent_id"] == agent_id
    second = payload(await client.call_tool("chat", {"agent_id": agent_id, "text": "what is my name?",
                                                      "conversation_id": first["conversation_id"]}))
    assert second["response"] == "what is my name?"
    assert second["conversation_id"] == first["conversation_id"] and second["turn_id"] != first["turn_id"]
    agents = payload(await client.call_tool("list_agents", {}))
    assert agent_id in {a["agent_id"] for a in agents["agents"]}


async def test_streamable_http_two_turns_messages_and_tasks(keyed_server: PenguinServer) -> None:
    auth = {"Authorization": "Bearer mcp-key"}
    async with httpx2.AsyncClient(headers=auth, timeout=30) as http, \
            Client(streamable_http_client(f"{keyed_server.url}/mcp", http_client=http)) as client:
        await two_turns(client, "mcp-http")
        receipt = payload(await client.call_tool("send_message", {"recipient": "mcp-http", "content": "ping"}))
        assert receipt["status"] in ("queued", "delivered", "processed") and receipt["recipient"] == "mcp-http"
        task = payload(await client.call_tool("run_task", {"prompt": "do it", "agent_id": "mcp-http"}))
        again = payload(await client.call_tool("get_task", {"task_id": task["id"]}))
        assert again["id"] == task["id"] and again["agent_id"] == "mcp-http"

        unknown = await client.call_tool("get_task", {"task_id": "task_nope"})
        assert unknown.is_error and "task-not-found" in unknown.content[0].text
        bad_id = await client.call_tool("chat", {"agent_id": "not valid!", "text": "x"})
        assert bad_id.is_error and "invalid-agent-id" in bad_id.content[0].text
        bad_type = await client.call_tool("run_task", {"prompt": "x", "max_iterations": "many"})
        assert bad_type.is_error


def test_http_without_the_key_is_refused(keyed_server: PenguinServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    assert httpx.post(f"{keyed_server.url}/mcp", json=body).status_code == 401


async def test_stdio_two_turns_in_process(tmp_path: Path) -> None:
    env = {**os.environ, "PENGUIN_DATA_DIR": str(tmp_path / "data"), "PENGUIN_MODEL": "scripted:echo"}
    env.pop("PENGUIN_URL", None)
    exe = penguin_executable()
    params = StdioServerParameters(command=exe[0], args=[*exe[1:], "mcp"], env=env, cwd=str(tmp_path))
    with (tmp_path / "stderr.log").open("w") as errlog:
        async with Client(stdio_client(params, errlog=errlog)) as client:
            await two_turns(client, "mcp-stdio")


async def test_stdio_is_a_client_of_the_server_that_owns_the_folder(keyed_server: PenguinServer) -> None:
    env = {**os.environ, "PENGUIN_DATA_DIR": str(keyed_server.data_dir), "PENGUIN_API_KEY": "mcp-key"}
    exe = penguin_executable()
    params = StdioServerParameters(command=exe[0], args=[*exe[1:], "mcp"], env=env, cwd=str(keyed_server.data_dir))
    async with Client(stdio_client(params, errlog=sys.stderr)) as client:
        await two_turns(client, "mcp-stdio-remote")
    async with httpx.AsyncClient(headers={"Authorization": "Bearer mcp-key"}) as http:
        listed = await http.get(f"{keyed_server.url}/api/v1/agents/mcp-stdio-remote")
    assert listed.status_code == 200  # the turns ran in the server, not in a second core
