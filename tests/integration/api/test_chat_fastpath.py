"""``ChatFastPath`` answers exactly as the FastAPI chat route does.

A JSON chat sent as ``application/json`` takes the fast path; the same body sent as
``application/vnd.penguin+json`` (JSON to FastAPI, not to the fast path) takes the route. Both
must give the same status, content type and body, for replies and for every kind of error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from penguin import PenguinCore
from penguin.api import create_app
from penguin.api.fastpath import ChatFastPath
from penguin.api.state import ApiState
from penguin.models.base import ModelRequest
from penguin.models.scripted import ScriptedModel

FAST = {"content-type": "application/json"}
ROUTE = {"content-type": "application/vnd.penguin+json"}
#: Differ from turn to turn by nature.
VOLATILE = ("turn_id", "timings")


def _crash(_request: ModelRequest) -> str:
    raise RuntimeError("the model blew up")


@pytest.fixture
async def http(app_core: PenguinCore) -> AsyncIterator[httpx.AsyncClient]:
    app_core.models.register("scripted:crash", ScriptedModel(_crash, name="scripted:crash"))
    transport = httpx.ASGITransport(app=create_app(app_core), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://penguin.test") as client:
        yield client


async def _both(http: httpx.AsyncClient, body: Any) -> tuple[httpx.Response, httpx.Response]:
    content = json.dumps(body).encode()
    fast = await http.post("/api/v1/chat", content=content, headers=FAST)
    route = await http.post("/api/v1/chat", content=content, headers=ROUTE)
    return fast, route


def _same(fast: httpx.Response, route: httpx.Response, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    assert (fast.status_code, fast.headers["content-type"]) == (route.status_code, route.headers["content-type"])
    fast_body, route_body = fast.json(), route.json()
    for key in (*VOLATILE, *ignore):
        fast_body.pop(key, None), route_body.pop(key, None)
    assert fast_body == route_body
    return dict(fast_body)


async def test_a_reply_is_the_same_both_ways(http: httpx.AsyncClient) -> None:
    """Two twin agents, one chatted with each way, answer alike (ids aside)."""
    replies = []
    for name, headers in (("twin-a", FAST), ("twin-b", ROUTE)):
        await http.post("/api/v1/chat", json={"text": "warm up", "agent_id": name})  # created here
        body = {"text": "hello", "agent_id": name, "context": {"k": 1}}
        replies.append(await http.post("/api/v1/chat", content=json.dumps(body).encode(), headers=headers))
    fast, route = replies
    assert fast.json()["agent_id"] == "twin-a" and route.json()["agent_id"] == "twin-b"
    reply = _same(fast, route, ignore=("agent_id", "conversation_id"))
    assert reply["response"] == "hello" and reply["created"] is False and reply["usage"]["input_tokens"] > 0


async def test_a_reply_has_every_documented_field(http: httpx.AsyncClient) -> None:
    fast = await http.post("/api/v1/chat", content=b'{"text": "hi"}', headers=FAST)
    assert fast.status_code == 200
    assert set(fast.json()) == {
        "agent_id", "conversation_id", "turn_id", "response", "tool_calls", "usage", "timings",
        "status", "iterations", "created", "model",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": "hi", "conversation_id": "conv_missing"}, 404),  # raised by the core, mid-request
        ({"text": "hi", "model": "scripted:error"}, 502),  # the model's failure
        ({"text": "hi", "model": "scripted:crash"}, 500),  # an unexpected exception
        ({"text": "hi", "agent_id": "Not An Id"}, 422),  # validation: handed to the route
        ({"text": "hi", "context": {"n": 2**70}}, 422),  # stdlib JSON: over 64 bits
        ({"text": ""}, 422),
        ({"text": "hi", "colour": "blue"}, 422),
        (["text", "hi"], 422),
    ],
)
async def test_an_error_is_the_same_problem_both_ways(http: httpx.AsyncClient, body: Any, status: int) -> None:
    fast, route = await _both(http, body)
    problem = _same(fast, route)
    assert fast.status_code == status and fast.headers["content-type"] == "application/problem+json"
    assert problem["status"] == status


async def test_malformed_json_is_the_route_s_400(http: httpx.AsyncClient) -> None:
    fast = await http.post("/api/v1/chat", content=b'{"text": ', headers=FAST)
    route = await http.post("/api/v1/chat", content=b'{"text": ', headers=ROUTE)
    _same(fast, route)
    assert fast.status_code == 400


async def test_streaming_still_answers_with_events(http: httpx.AsyncClient) -> None:
    response = await http.post("/api/v1/chat", content=b'{"text": "hi", "streaming": true}', headers=FAST)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert "event: final" in response.text


@pytest.mark.parametrize(
    ("body", "headers", "fast"),
    [
        (b'{"text": "hi"}', FAST, True),
        (b'{"text": "hi"}', {"content-type": "application/json; charset=utf-8"}, True),
        (b'{"text": "hi"}', ROUTE, False),
        (b'{"text": "hi", "streaming": true}', FAST, False),
        (b'{"text": "hi", "colour": "blue"}', FAST, False),
        (b"{", FAST, False),
        (b"", FAST, False),
    ],
)
async def test_only_plain_valid_json_chats_skip_the_route(
    app_core: PenguinCore, body: bytes, headers: dict[str, str], fast: bool
) -> None:
    """The fast path answers a plain chat itself and hands the route everything else, body intact."""
    seen: list[bytes] = []

    async def route(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        seen.append(message["body"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = ChatFastPath(route, state=ApiState(core=app_core), handlers={})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://penguin.test") as client:
        response = await client.post("/api/v1/chat", content=body, headers=headers)
        other = await client.post("/api/v1/agents", content=b'{"text": "hi"}', headers=FAST)
    assert response.status_code == (200 if fast else 299) and other.status_code == 299
    assert seen == ([] if fast else [body]) + [b'{"text": "hi"}']
