"""``PenguinClient`` in-process (httpx.ASGITransport over ``create_app(core)``): every method."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from penguin_server import InProcessServer

from penguin import PenguinCore
from penguin.api.client_base import query_pairs
from penguin.api_client import (
    APIConnectionError,
    APITimeoutError,
    ChatOptions,
    ChatResponse,
    ConflictError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    PenguinAPIError,
    PenguinClient,
    ServerError,
    TaskOptions,
    ValidationError,
    error_for,
)


async def test_chat_and_stream(local: PenguinClient) -> None:
    reply = await local.chat("Generate a changelog", options=ChatOptions(agent_id="release",
                                                                       context={"repository": "penguin"}))
    assert isinstance(reply, ChatResponse)
    assert str(reply) == "Generate a changelog" and reply.agent_id == "release" and reply.created
    events = [e async for e in local.stream_chat("streamed words", ChatOptions(agent_id="release"))]
    assert [e.type for e in events][0] == "start" and events[-1].type == "final"
    assert "".join(e.text or "" for e in events if e.type == "delta") == "streamed words"
    final = events[-1].result()
    assert final.conversation_id == reply.conversation_id and final.response == "streamed words"
    via_stream = await local.chat("chat over sse", ChatOptions(agent_id="release", streaming=True))
    assert str(via_stream) == "chat over sse"


async def test_agents(local: PenguinClient) -> None:
    created = await local.create_agent("qa", persona="You check work.", roles=["qa"], metadata={"team": "x"})
    assert created.system_prompt == "You check work." and created.roles == ["qa"]
    assert [a.agent_id for a in await local.list_agents(role="qa")] == ["qa"]
    assert {a.agent_id for a in await local.list_agents()} == {"default", "qa"}
    got = await local.get_agent("qa")
    assert got.status is not None and got.status.queued == 0
    updated = await local.update_agent("qa", model="scripted:echo", model_parameters={"chunk": 2})
    assert updated.model == "scripted:echo" and updated.metadata == {"team": "x"}
    assert (await local.pause_agent("qa")).paused is True
    assert (await local.resume_agent("qa")).paused is False
    assert (await local.cancel_agent("qa")).cancelled == []
    assert (await local.delete_agent("qa")).agent_id == "qa"
    with pytest.raises(NotFoundError) as missing:
        await local.get_agent("qa")
    assert missing.value.code == "agent-not-found" and missing.value.field == "agent_id"


async def test_conversations_checkpoints_history(local: PenguinClient) -> None:
    first = await local.chat("one", ChatOptions(agent_id="notes"))
    cp = await local.create_checkpoint(first.conversation_id, "start")
    await local.chat("two", ChatOptions(agent_id="notes"))
    assert [c.id for c in await local.list_checkpoints(first.conversation_id)] == [cp.id]
    page = await local.get_conversation_history(first.conversation_id, limit=3)
    assert [m.seq for m in page.messages] == [1, 2, 3] and page.next_after_seq == 3
    everything = [m.content async for m in local.iter_conversation_history(first.conversation_id, page_size=1)]
    assert everything == ["one", "one", "two", "two"]
    only_user = await local.get_conversation_history(first.conversation_id, agent_id="notes", message_type="message")
    assert len(only_user.messages) == 4
    branch = await local.branch(cp.id, title="alt")
    assert branch.kind == "branch" and branch.title == "alt"
    rolled = await local.rollback(cp.id)
    assert rolled.conversation.message_count == 2 and rolled.archive is not None
    assert {c.id for c in await local.list_conversations("notes")} == {
        first.conversation_id, branch.id, rolled.archive.id}
    assert (await local.get_conversation(first.conversation_id)).agent_id == "notes"


async def test_tasks(local: PenguinClient) -> None:
    await local.create_agent("planner", roles=["planning"])
    task = await local.run_task("plan it TASK_COMPLETE", TaskOptions(agent_role="planning", max_iterations=2))
    done = await local.wait_task(task.id, timeout=10)
    assert done.status == "completed" and done.result == "plan it" and done.agent_id == "planner"
    assert [t.id for t in await local.list_tasks(agent_id="planner")] == [task.id]
    assert (await local.get_task(task.id)).finished
    with pytest.raises(ConflictError):
        await local.cancel_task(task.id)


async def test_server_info(local: PenguinClient) -> None:
    assert (await local.health()).status == "ok"
    assert (await local.version()).api == "v1"


async def test_typed_errors_carry_the_problem(local: PenguinClient) -> None:
    with pytest.raises(ValidationError) as bad:
        await local.chat("hi", ChatOptions(model="nope:x"))
    assert bad.value.status == 422 and bad.value.field == "model" and bad.value.code == "invalid-model"
    assert "known providers" in bad.value.detail and bad.value.problem["status"] == 422
    with pytest.raises(NotFoundError):
        await local.get_task("task_nope")
    with pytest.raises(ValidationError) as rule:
        await local.get_agent("bad id")  # percent-encoded: the server sees the whole id
    assert rule.value.code == "invalid-agent-id"
    with pytest.raises(NotFoundError):
        await local.get_agent("../tasks")
    with pytest.raises(PayloadTooLargeError) as big:
        await local.chat("x" * (2 * 1024 * 1024))
    assert big.value.status == 413
    with pytest.raises(NotFoundError):
        [e async for e in local.stream_chat("hi", ChatOptions(conversation_id="conv_nope"))]
    with pytest.raises(ServerError) as model_failed:
        await local.chat("hi", ChatOptions(model="scripted:error"))
    assert model_failed.value.status == 502 and model_failed.value.code == "model-error"
    with pytest.raises(ServerError):
        await local.chat("hi", ChatOptions(model="scripted:error", streaming=True))
    assert isinstance(error_for(405, {"detail": "x"}), MethodNotAllowedError)
    assert type(error_for(418, {})) is PenguinAPIError


async def test_the_client_sends_the_api_key(tmp_path: Path) -> None:
    secured = PenguinCore(data_dir=tmp_path, model="scripted:echo", api_key="s3cret")
    async with secured, InProcessServer(secured) as server:
        async with PenguinClient(server.url, api_key="s3cret") as client:
            assert (await client.version()).api == "v1"
        async with PenguinClient(server.url, api_key="wrong") as client:
            with pytest.raises(PenguinAPIError) as denied:
                await client.version()
            assert denied.value.status == 401 and denied.value.code == "unauthorized"


async def test_unreachable_server_is_a_connection_error() -> None:
    async with PenguinClient("http://127.0.0.1:9", timeout=2) as client:
        with pytest.raises(APIConnectionError):
            await client.health()
        with pytest.raises(APIConnectionError):
            async with client.chat_stream_socket():
                pass


async def test_orchestration_methods(local: PenguinClient) -> None:
    for agent_id in ("alpha", "beta"):
        await local.create_agent(agent_id)
    receipt = await local.send_message("alpha", "hello alpha", channel="ops")
    assert receipt.status == "queued"
    done = await local.wait_receipt(receipt.message_id, timeout=10)
    assert done.status == "processed" and done.reply_id is not None
    assert (await local.get_message(done.reply_id)).content == "hello alpha"
    assert receipt.message_id in [e.id for e in await local.list_messages(agent_id="alpha")]
    assert [r.message_id for r in await local.list_receipts(message_id=receipt.message_id)] == [receipt.message_id]

    room = await local.create_room("team", members=["alpha"])
    assert (await local.join_room("team", "beta")).members == ["alpha", "beta"]
    assert [r.name for r in await local.list_rooms(member="beta")] == ["team"]
    post = await local.post_to_room("team", "standup")
    assert sorted(r.recipient or "" for r in post.receipts) == ["alpha", "beta"]
    for r in post.receipts:
        await local.wait_receipt(r.message_id, r.recipient, timeout=10)
    assert {e.sender for e in await local.room_history("team")} >= {"human", "alpha", "beta"}
    assert (await local.leave_room("team", "alpha")).members == ["beta"] and room.name == "team"
    assert (await local.get_room("team")).members == ["beta"]

    assert (await local.assign_role("reviewer", ["alpha", "beta"])).agent_ids == ["alpha", "beta"]
    assert (await local.roles())["reviewer"] == ["alpha", "beta"]
    answer = await local.round_robin("reviewer", "review this", timeout=10)
    assert answer.status == "processed" and answer.text == "review this"
    lineage = await local.role_chain(["reviewer"], "chain me", timeout=10)
    assert lineage["output"] == "chain me"
    answers = await local.broadcast("everyone", agents=["alpha", "beta"], timeout=10)
    assert sorted(a.agent_id or "" for a in answers) == ["alpha", "beta"]
    await local.set_routes([{"name": "to-beta", "target": "beta", "contains": ["beta"]}], default=["alpha"])
    assert (await local.route("for beta please", timeout=10))["answer"]["agent_id"] == "beta"
    assert (await local.unassign_role("reviewer")).agent_ids == []

    child = await local.spawn_agent("alpha", "alpha-child")
    assert child.parent_id == "alpha" and [c.agent_id for c in await local.list_subagents("alpha")] == ["alpha-child"]
    delegated = await local.delegate("alpha", "alpha-child", "do it TASK_COMPLETE", timeout=10)
    assert delegated.status == "completed"
    assert (await local.delegation_result(delegated.task_id)).task_id == delegated.task_id
    assert await local.cancel_subagent("alpha-child") == []
    assert (await local.agent_usage("alpha-child")).turns >= 1

    memory = await local.memory_add("Release train leaves on Fridays", agent_id="alpha", tags=["release"])
    assert [h.id for h in await local.memory_search("release train", mode="keyword")] == [memory.id]
    assert [m.id for m in await local.memory_list(author="alpha")] == [memory.id]
    assert (await local.memory_get(memory.id)).text == memory.text
    assert (await local.memory_update(memory.id, agent_id="alpha", tags=["release", "ops"])).tags == ["release", "ops"]
    assert (await local.memory_stats()).total == 1
    assert (await local.memory_delete(memory.id, agent_id="alpha")).id == memory.id
    with pytest.raises(NotFoundError):
        await local.memory_get(memory.id)

    assert await local.pending_approvals() == []
    with pytest.raises(NotFoundError):
        await local.approve_tool_call("nope")
    with pytest.raises(NotFoundError):
        await local.deny_tool_call("nope", "no")
    assert (await local.tool_stats())["pending_approvals"] == 0


async def test_message_stream_over_the_network(remote: PenguinClient) -> None:
    agent_id = f"streamed-{uuid.uuid4().hex[:8]}"
    await remote.create_agent(agent_id)
    async with remote.message_stream(agent_id=agent_id, message_type="message") as stream:
        receipt = await remote.send_message(agent_id, "over the bus")
        first, second = await stream.recv(), await stream.recv()
    assert (first.id, first.content, second.sender) == (receipt.message_id, "over the bus", agent_id)
    async with remote.message_stream(agent_id=agent_id, message_type="message", since_seq=first.seq) as resumed:
        assert (await resumed.recv()).id == second.id
    with pytest.raises(ValidationError) as bad:
        async with remote.message_stream(agent_id="bad id") as broken:
            await broken.recv()
    assert bad.value.field == "agent_id"


def test_the_client_surface_is_pinned() -> None:
    import penguin.api_client as module

    assert sorted(module.__all__) == sorted([
        "APIConnectionError", "APITimeoutError", "AgentInfo", "AuthenticationError", "BadRequestError",
        "CancelResult", "ChatEvent", "ChatOptions", "ChatResponse", "ChatSocket", "CheckpointInfo",
        "ConflictError", "ConversationInfo", "HealthInfo", "HistoryPage", "MessageInfo", "MessageStream",
        "MethodNotAllowedError", "NotFoundError", "PayloadTooLargeError", "PenguinAPIError", "PenguinClient",
        "PermissionDeniedError", "RateLimitError", "RollbackResult", "ServerError", "TaskInfo", "TaskOptions",
        "TelemetryStream", "TelemetrySummaryInfo", "ValidationError", "VersionInfo", "error_for",
    ])
    assert all(hasattr(module, name) for name in module.__all__)


def test_query_parameters_are_sent_as_text_pairs() -> None:
    assert query_pairs(None) is None and query_pairs({}) is None
    assert query_pairs({"a": True, "b": False, "n": 3, "tags": ["x", "y"], "skip": None}) == [
        ("a", "true"), ("b", "false"), ("n", "3"), ("tags", "x"), ("tags", "y"),
    ]


async def test_a_bad_base_url_is_a_connection_error() -> None:
    async with PenguinClient("http://[::1", timeout=2) as client:
        with pytest.raises(APIConnectionError, match="not a usable base URL"):
            await client.health()
    async with PenguinClient("ftp://127.0.0.1:9", timeout=2) as client:
        with pytest.raises(APIConnectionError):
            await client.health()


async def test_a_silent_server_is_a_timeout() -> None:
    """The timeout is per read: a server that accepts and never answers times out, typed."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, PenguinClient(f"http://127.0.0.1:{port}", timeout=0.3) as client:
        with pytest.raises(APITimeoutError):
            await client.health()
