"""Bad input never gets a 500: each case is a 4xx problem+json with a useful detail, and loses nothing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from penguin_server import InProcessServer

from penguin import PenguinCore
from penguin.api import create_app
from penguin.api_client import ChatOptions, NotFoundError, PenguinClient

API = "/api/v1"
RULE = "^[A-Za-z0-9_-]{1,64}$"
AGENT = f"matrix-{uuid.uuid4().hex[:8]}"
OTHER = f"matrix-other-{uuid.uuid4().hex[:8]}"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    #: Substring the problem ``detail`` must contain (case-insensitive).
    detail: str
    #: Expected problem ``field``, when one field is to blame.
    field: str | None = None
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)


def chat(body: Any, status: int, detail: str, field: str | None = None, name: str = "") -> Case:
    return Case(name or f"chat {body!r}"[:60], "POST", "/chat", status, detail, field, {"json": body})


async def chunks() -> AsyncIterator[bytes]:
    for _ in range(40):
        yield b" " * 65_536


CASES: list[Case] = [
    # Agent ids (body and path) state the rule.
    chat({"text": "hi", "agent_id": "bad id"}, 422, RULE, "agent_id"),
    chat({"text": "hi", "agent_id": ""}, 422, RULE, "agent_id"),
    chat({"text": "hi", "agent_id": "a" * 65}, 422, RULE, "agent_id"),
    chat({"text": "hi", "agent_id": "s\u00fcpport"}, 422, RULE, "agent_id"),
    chat({"text": "hi", "agent_id": "a/b"}, 422, RULE, "agent_id"),
    chat({"text": "hi", "agent_id": 7}, 422, "valid string", "agent_id"),
    Case("path agent id", "GET", "/agents/bad%20id", 422, RULE, "agent_id"),
    Case("path agent id too long", "GET", "/agents/" + "x" * 65, 422, RULE, "agent_id"),
    Case("role query", "GET", "/agents?role=no%20spaces", 422, RULE, "role"),
    # Missing fields and wrong types.
    chat({}, 422, "required", "text"),
    chat({"agent_id": AGENT}, 422, "required", "text"),
    chat({"text": ""}, 422, "at least 1", "text"),
    chat({"text": "   "}, 422, "must not be empty", "text"),
    chat({"text": 42}, 422, "valid string", "text"),
    chat({"text": "hi", "streaming": "yes"}, 422, "boolean", "streaming"),
    chat({"text": "hi", "max_iterations": 0}, 422, "greater than or equal to 1", "max_iterations"),
    chat({"text": "hi", "max_iterations": 1001}, 422, "less than or equal to 1000", "max_iterations"),
    chat({"text": "hi", "max_iterations": "3"}, 422, "integer", "max_iterations"),
    chat({"text": "hi", "context": "repo"}, 422, "dictionary", "context"),
    chat({"text": "hi", "context": {"n": 2**70}}, 422, "64-bit", "context"),
    chat({"text": "hi", "colour": "blue"}, 422, "unknown field", "colour"),
    chat(["text", "hi"], 422, "JSON object", "body", name="chat body is a list"),
    # Model strings.
    chat({"text": "hi", "model": "gpt4"}, 422, "provider:model", "model"),
    chat({"text": "hi", "model": "nosuch:thing"}, 422, "known providers", "model"),
    chat({"text": "hi", "model": "scripted:nosuchscript"}, 422, "unknown scripted model", "model"),
    chat({"text": "hi", "model": ""}, 422, "at least 1", "model"),
    Case("agent with bad model", "POST", "/agents", 422, "provider:model", "model",
         {"json": {"agent_id": "m-bad", "model": "not a model"}}),
    # Malformed and oversized bodies.
    Case("malformed JSON", "POST", "/chat", 400, "not valid JSON", "body",
         {"content": b'{"text": "hi",', "headers": {"content-type": "application/json"}}),
    Case("lone surrogate", "POST", "/chat", 422, "string", "text",
         {"content": b'{"text": "\\ud800"}', "headers": {"content-type": "application/json"}}),
    Case("form body", "POST", "/chat", 422, "JSON object", "body",
         {"content": b"text=hi", "headers": {"content-type": "application/x-www-form-urlencoded"}}),
    Case("no body", "POST", "/chat", 422, "required", "body"),
    Case("oversized body", "POST", "/chat", 413, "limit of 1048576 bytes", "body",
         {"content": b'{"text": "' + b"x" * (2 * 1024 * 1024) + b'"}',
          "headers": {"content-type": "application/json"}}),
    Case("oversized chunked body", "POST", "/agents", 413, "limit of 1048576 bytes", "body",
         {"content": chunks, "headers": {"content-type": "application/json"}}),
    # Unknown ids.
    chat({"text": "hi", "agent_id": AGENT, "conversation_id": "conv_nope"}, 404, "no conversation",
         "conversation_id"),
    Case("unknown agent", "GET", "/agents/nobody-here", 404, "no agent", "agent_id"),
    Case("unknown agent patch", "PATCH", "/agents/nobody-here", 404, "no agent", "agent_id", {"json": {}}),
    Case("unknown agent pause", "POST", "/agents/nobody-here/pause", 404, "no agent", "agent_id"),
    Case("unknown agent cancel", "POST", "/agents/nobody-here/cancel", 404, "no agent", "agent_id"),
    Case("unknown agent conversations", "GET", "/agents/nobody-here/conversations", 404, "no agent", "agent_id"),
    Case("unknown conversation", "GET", "/conversations/conv_nope/history", 404, "no conversation",
         "conversation_id"),
    Case("unknown conversation checkpoint", "POST", "/conversations/conv_nope/checkpoints", 404,
         "no conversation", "conversation_id", {"json": {"name": "x"}}),
    Case("unknown checkpoint rollback", "POST", "/checkpoints/cp_nope/rollback", 404, "no checkpoint",
         "checkpoint_id"),
    Case("unknown checkpoint branch", "POST", "/checkpoints/cp_nope/branch", 404, "no checkpoint",
         "checkpoint_id"),
    Case("unknown task", "GET", "/tasks/task_nope", 404, "no task", "task_id"),
    Case("unknown task cancel", "POST", "/tasks/task_nope/cancel", 404, "no task", "task_id"),
    Case("unknown role task", "POST", "/tasks", 404, "no agent has the role", "agent_role",
         {"json": {"prompt": "x", "agent_role": "nobody-role"}}),
    # Pagination and filters.
    Case("limit 0", "GET", "/conversations/conv_nope/history?limit=0", 422, "greater than or equal", "limit"),
    Case("limit too big", "GET", "/conversations/conv_nope/history?limit=1001", 422, "less than", "limit"),
    Case("limit not a number", "GET", "/conversations/conv_nope/history?limit=ten", 422, "integer", "limit"),
    Case("negative cursor", "GET", "/conversations/conv_nope/history?after_seq=-1", 422, "greater than",
         "after_seq"),
    Case("cursor overflow", "GET", f"/conversations/conv_nope/history?after_seq={2**40}", 422, "less than",
         "after_seq"),
    Case("history agent filter", "GET", "/conversations/conv_nope/history?agent_id=a%20b", 422, RULE,
         "agent_id"),
    Case("tasks agent filter", "GET", "/tasks?agent_id=a%20b", 422, RULE, "agent_id"),
    # Agents and tasks.
    Case("create without id", "POST", "/agents", 422, "required", "agent_id", {"json": {"persona": "x"}}),
    Case("create existing", "POST", "/agents", 409, "already exists", "agent_id", {"json": {"agent_id": AGENT}}),
    Case("roles not a list", "POST", "/agents", 422, "list", "roles", {"json": {"agent_id": "r-x", "roles": "qa"}}),
    Case("unknown tool policy field", "POST", "/agents", 422, "unknown tool policy field", "tool_policy",
         {"json": {"agent_id": "tp-x", "tool_policy": {"allow_all": True}}}),
    Case("context budget too small", "POST", "/agents", 422, "greater than or equal to 256", "context_tokens",
         {"json": {"agent_id": "ct-x", "context_tokens": 10}}),
    Case("paused not a bool", "PATCH", f"/agents/{AGENT}", 422, "boolean", "paused", {"json": {"paused": "yes"}}),
    Case("null persona", "PATCH", f"/agents/{AGENT}", 422, "system_prompt", "system_prompt",
         {"json": {"system_prompt": None}}),
    Case("remove default", "DELETE", "/agents/default", 409, "cannot be removed", "agent_id"),
    Case("empty checkpoint name", "POST", "/conversations/conv_nope/checkpoints", 422, "at least 1", "name",
         {"json": {"name": ""}}),
    Case("task without prompt", "POST", "/tasks", 422, "required", "prompt", {"json": {"agent_id": AGENT}}),
    Case("task id and role", "POST", "/tasks", 422, "not both", "agent_role",
         {"json": {"prompt": "x", "agent_id": AGENT, "agent_role": "qa"}}),
    # Routing.
    Case("unknown route", "GET", "/nope", 404, "no route"),
    Case("wrong method", "PUT", "/chat", 405, "not allowed"),
]


async def test_the_matrix_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.fixture(scope="module")
def known_agents(server: Any) -> str:
    """Create the agents the matrix refers to, with one valid turn each (before the bad input)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.post(f"{API}/agents", json={"agent_id": AGENT}).raise_for_status()
        client.post(f"{API}/chat", json={"text": "before", "agent_id": AGENT}).raise_for_status()
        return str(client.post(f"{API}/chat", json={"text": "x", "agent_id": OTHER}).json()["conversation_id"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input_is_a_useful_4xx(case: Case, http: httpx.AsyncClient, known_agents: str) -> None:
    kwargs = dict(case.kwargs)
    if callable(kwargs.get("content")):
        kwargs["content"] = kwargs["content"]()
    response = await http.request(case.method, API + case.path, **kwargs)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == case.status
    assert problem["type"].startswith("https://penguin.dev/problems/") and problem["title"]
    assert case.detail.lower() in problem["detail"].lower(), problem
    if case.field is not None:
        assert problem.get("field") == case.field, problem


async def test_foreign_conversation_is_a_conflict(http: httpx.AsyncClient, known_agents: str) -> None:
    response = await http.post(f"{API}/chat", json={"text": "hi", "agent_id": AGENT, "conversation_id": known_agents})
    assert response.status_code == 409
    assert response.json()["field"] == "conversation_id" and "belongs to agent" in response.json()["detail"]


async def test_nothing_was_lost_or_written_by_bad_input(http: httpx.AsyncClient, known_agents: str) -> None:
    after = (await http.post(f"{API}/chat", json={"text": "after", "agent_id": AGENT})).json()
    log = (await http.get(f"{API}/conversations/{after['conversation_id']}/history")).json()["messages"]
    assert [(m["role"], m["content"]) for m in log] == [
        ("user", "before"), ("assistant", "before"), ("user", "after"), ("assistant", "after")]
    agents = {a["agent_id"] for a in (await http.get(f"{API}/agents")).json()}
    assert not agents & {"m-bad", "r-x", "tp-x", "ct-x", "nobody-here"}
    assert (await http.get(f"{API}/health")).json()["status"] == "ok"


async def test_unknown_agent_is_404_when_auto_create_is_off(tmp_path: Any) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", auto_create_agents=False) as core:
        transport = httpx.ASGITransport(app=create_app(core))
        async with httpx.AsyncClient(transport=transport, base_url="http://penguin.test") as http:
            response = await http.post(f"{API}/chat", json={"text": "hi", "agent_id": "ghost"})
            assert response.status_code == 404
            assert response.json()["type"].endswith("/agent-not-found")
            assert "auto-create is off" in response.json()["detail"]
            stream = await http.post(f"{API}/chat", json={"text": "hi", "agent_id": "ghost", "streaming": True})
            assert stream.status_code == 404 and stream.headers["content-type"] == "application/problem+json"
        async with InProcessServer(core) as server, PenguinClient(server.url) as client:
            with pytest.raises(NotFoundError) as missing:
                await client.chat("hi", ChatOptions(agent_id="ghost"))
            assert missing.value.status == 404
        assert [s.agent_id for s in core.list_agents()] == ["default"]
