"""MCP servers end to end: a real server process (stdio, and streamable HTTP on 127.0.0.1), real
chat turns with a scripted model calling ``mcp__<server>__<tool>``, and the same policy as any tool."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from penguin import PenguinCore
from penguin.errors import AgentNotFound, Conflict, NotFound, ToolError, ValidationFailed
from penguin.tools.mcp import namespaced

SERVER = str(Path(__file__).with_name("mcp_demo_server.py"))
DEMO_TOOLS = ("mcp__demo__add", "mcp__demo__shout_loud", "mcp__demo__fail", "mcp__demo__slow",
              "mcp__demo__pid", "mcp__demo__crash")


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        yield c


async def calling(core: PenguinCore, agent_id: str, tool: str, arguments: dict[str, object],
                  **policy: object) -> None:
    """An agent on ``scripted:tool`` that calls ``tool`` once per message and answers with its result."""
    await core.create_agent(agent_id, model="scripted:tool",
                            model_parameters={"tool": tool, "arguments": arguments}, tool_policy=policy)


async def test_stdio_server_tool_called_in_a_chat_turn(core: PenguinCore, tmp_path: Path) -> None:
    info = await core.attach_mcp_server("demo", command=sys.executable, args=[SERVER])
    assert (info.name, info.transport, info.agent_id, info.connected, info.tools) == (
        "demo", "stdio", None, True, DEMO_TOOLS
    )
    assert info.target == f"{sys.executable} {SERVER}"
    add = core.tools.get("mcp__demo__add")
    assert add is not None and add.description == "[MCP server demo] Add two integers."
    assert add.parameters == {
        "type": "object",
        "properties": {"a": {"title": "A", "type": "integer"}, "b": {"title": "B", "type": "integer"}},
        "required": ["a", "b"],
    }

    await calling(core, "calc", "mcp__demo__add", {"a": 2, "b": 3})
    result = await core.chat("what is 2 + 3?", agent_id="calc")
    assert result.text == "5"
    assert [(c["name"], c["result"], c["error"]) for c in result.tool_calls] == [("mcp__demo__add", "5", None)]
    stored = [m for m in await core.history("calc") if m.role == "tool"]
    assert [(m.name, m.content) for m in stored] == [("mcp__demo__add", "5")]
    assert stored[0].metadata is not None and stored[0].metadata["duration_ms"] > 0

    await calling(core, "loud", "mcp__demo__shout_loud", {"text": "hello"})
    assert (await core.chat("shout", agent_id="loud")).text == "HELLO"

    await calling(core, "failing", "mcp__demo__fail", {"reason": "disk on fire"})
    failed = await core.chat("try", agent_id="failing")
    assert failed.tool_calls[0]["error"] == (
        "MCP tool 'fail' on 'demo' failed: Error executing tool fail: disk on fire"
    )
    assert failed.text == f"error: {failed.tool_calls[0]['error']}"  # the turn went on

    await calling(core, "sloppy", "mcp__demo__add", {"a": "two", "b": 3})
    sloppy = await core.chat("add", agent_id="sloppy")
    assert "MCP tool 'add' on 'demo' failed" in sloppy.tool_calls[0]["error"]
    assert (tmp_path / "logs" / "mcp-demo.log").exists()


async def test_mcp_tools_obey_the_agent_policy(core: PenguinCore) -> None:
    await core.attach_mcp_server("demo", command=sys.executable, args=[SERVER])
    await calling(core, "walled", "mcp__demo__add", {"a": 1, "b": 1}, deny=["mcp__*"])
    walled = await core.chat("add", agent_id="walled")
    assert walled.tool_calls[0]["denied"] == "not_enabled"
    visible = [s.name for s in core.tools.schemas_for(core.get_agent("walled"))]
    assert "read_file" in visible and not any(name.startswith("mcp__") for name in visible)

    await calling(core, "metered", "mcp__demo__add", {"a": 1, "b": 1}, tool_rate_per_minute={"mcp__demo__*": 1})
    assert (await core.chat("add", agent_id="metered")).text == "2"
    assert (await core.chat("add", agent_id="metered")).tool_calls[0]["denied"] == "tool_rate_limit"

    await calling(core, "hasty", "mcp__demo__slow", {"seconds": 5}, timeout=0.3)
    started = time.perf_counter()
    hasty = await core.chat("wait", agent_id="hasty")
    assert time.perf_counter() - started < 3
    assert hasty.tool_calls[0]["error"] == (
        "tool 'mcp__demo__slow' timed out after 0.3s (tool_policy.timeout); the call was abandoned"
    )
    # The abandoned call did not break the session: the next call on it works.
    await calling(core, "after", "mcp__demo__add", {"a": 20, "b": 22})
    assert (await core.chat("add", agent_id="after")).text == "42"

    await calling(core, "asks", "mcp__demo__add", {"a": 1, "b": 2}, require_approval=["mcp__*"])
    turn = asyncio.create_task(core.chat("add", agent_id="asks"))
    req = await core.approvals.wait_for_pending("asks", timeout=5)
    assert req.tool == "mcp__demo__add"
    core.approve_tool_call(req.id)
    assert (await turn).text == "3"
    reasons = core.tool_stats()["totals"]["denied_by_reason"]
    assert reasons == {"not_enabled": 1, "tool_rate_limit": 1}


async def test_per_agent_server_is_visible_only_to_that_agent(core: PenguinCore) -> None:
    await core.create_agent("alice")
    await core.create_agent("bob")
    info = await core.attach_mcp_server("private", command=sys.executable, args=[SERVER], agent_id="alice")
    assert info.agent_id == "alice" and "mcp__private__add" in info.tools
    assert "mcp__private__add" in [s.name for s in core.tools.schemas_for(core.get_agent("alice"))]
    assert not any(s.name.startswith("mcp__") for s in core.tools.schemas_for(core.get_agent("bob")))
    assert [s.name for s in core.mcp_servers("alice")] == ["private"] and core.mcp_servers("bob") == []

    await core.update_agent("alice", model="scripted:tool",
                            model_parameters={"tool": "mcp__private__add", "arguments": {"a": 4, "b": 5}})
    await core.update_agent("bob", model="scripted:tool",
                            model_parameters={"tool": "mcp__private__add", "arguments": {"a": 4, "b": 5}})
    assert (await core.chat("add", agent_id="alice")).text == "9"
    bob = await core.chat("add", agent_id="bob")
    assert bob.tool_calls[0]["error"].startswith("unknown tool 'mcp__private__add'; available: ")
    assert "mcp__" not in bob.tool_calls[0]["error"].split("available: ")[1]

    await core.remove_agent("alice")  # its servers go with it
    assert core.mcp_servers() == []
    with pytest.raises(AgentNotFound):
        await core.attach_mcp_server("ghost", command=sys.executable, args=[SERVER], agent_id="nobody")


async def test_a_crashed_server_fails_calls_not_turns(core: PenguinCore) -> None:
    await core.attach_mcp_server("demo", command=sys.executable, args=[SERVER])
    await calling(core, "breaker", "mcp__demo__crash", {}, timeout=10)
    crashed = await core.chat("crash it", agent_id="breaker")
    assert crashed.tool_calls[0]["error"] == (
        "MCP server 'demo' is not connected (connection closed); detach and attach it again"
    )
    await calling(core, "later", "mcp__demo__add", {"a": 1, "b": 1}, timeout=10)
    later = await core.chat("add", agent_id="later")
    assert later.tool_calls[0]["error"].startswith("MCP server 'demo' is not connected")
    assert later.text.startswith("error: MCP server 'demo' is not connected")
    [info] = core.mcp_servers()
    assert not info.connected and info.error is not None


async def test_detach_and_stop_close_the_server(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        await asyncio.gather(  # attaching does not block: both servers start at once
            core.attach_mcp_server("demo", command=sys.executable, args=[SERVER]),
            core.attach_mcp_server("other", command=sys.executable, args=[SERVER]),
        )
        await calling(core, "who", "mcp__other__pid", {})
        other_pid = int((await core.chat("pid?", agent_id="who")).text)
        detached = await core.detach_mcp_server("demo")
        assert detached.name == "demo" and core.tools.get("mcp__demo__add") is None
        assert [s.name for s in core.mcp_servers()] == ["other"]
        with pytest.raises(NotFound, match="no MCP server 'demo' is attached; attached: \\['other'\\]"):
            await core.detach_mcp_server("demo")
        assert _alive(other_pid)
    assert not _alive(other_pid)  # stop() closed the session and the process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


async def test_attach_errors_are_clear(core: PenguinCore, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="invalid MCP server name 'bad name'"):
        await core.attach_mcp_server("bad name", command="x")
    with pytest.raises(ValidationFailed, match="give exactly one of command"):
        await core.attach_mcp_server("both", command="x", url="http://127.0.0.1:1/mcp")
    with pytest.raises(ValidationFailed, match="give exactly one of command"):
        await core.attach_mcp_server("neither")
    with pytest.raises(ValidationFailed, match="url must be http"):
        await core.attach_mcp_server("ftp", url="ftp://127.0.0.1/mcp")
    with pytest.raises(ToolError, match="could not connect to MCP server 'nosuch'") as info:
        await core.attach_mcp_server("nosuch", command=str(tmp_path / "no-such-binary"))
    assert "mcp-nosuch.log" in info.value.detail
    with pytest.raises(ToolError, match="could not connect to MCP server 'dead'"):
        await core.attach_mcp_server("dead", url="http://127.0.0.1:9/mcp")
    assert core.mcp_servers() == []
    await core.attach_mcp_server("demo", command=sys.executable, args=[SERVER])
    with pytest.raises(Conflict, match="already attached"):
        await core.attach_mcp_server("demo", command=sys.executable, args=[SERVER])


def test_namespacing_keeps_names_valid_and_unique() -> None:
    assert namespaced("demo", "shout.loud") == "mcp__demo__shout_loud"
    long = namespaced("server", "x" * 80)
    assert len(long) == 64 and long.startswith("mcp__server__xxx")
    clash = namespaced("demo", "shout_loud", {"mcp__demo__shout_loud"})
    assert clash != "mcp__demo__shout_loud" and len(clash) <= 64


# -- streamable HTTP on 127.0.0.1 ----------------------------------------------------------------

@pytest.fixture
def http_server() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, SERVER, "http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("the MCP HTTP server did not start")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_streamable_http_server(core: PenguinCore, http_server: str) -> None:
    info = await core.attach_mcp_server("web", url=http_server)
    assert (info.transport, info.target, info.connected) == ("http", http_server, True)
    await calling(core, "webcalc", "mcp__web__add", {"a": 40, "b": 2})
    assert (await core.chat("add", agent_id="webcalc")).text == "42"
    await core.detach_mcp_server("web")


def test_non_text_results_are_described() -> None:
    from mcp_types import (
        CallToolResult,
        EmbeddedResource,
        ImageContent,
        ResourceLink,
        TextContent,
        TextResourceContents,
    )

    from penguin.tools.mcp import result_text

    mixed = CallToolResult(content=[
        TextContent(type="text", text="here:"),
        ImageContent(type="image", data="aGVsbG8=", mime_type="image/png"),
        ResourceLink(type="resource_link", name="r", uri="file:///r.txt"),
        EmbeddedResource(type="resource", resource=TextResourceContents(uri="file:///e.txt", text="embedded")),
    ])
    assert result_text(mixed) == "here:\n[image image/png, 8 base64 chars]\n[resource file:///r.txt]\nembedded"
    assert result_text(CallToolResult(content=[], structured_content={"n": 1})) == '{"n":1}'
