"""The whole turn loop against a fake OpenAI-compatible server on 127.0.0.1 (no scripted model)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fake_servers import FakeServer, json_reply, openai_sse, raw_reply, sse_reply

from penguin import ModelError, PenguinCore


def completion(content: str | None, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool_calls else "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 2},
    }


@pytest.fixture
async def core(tmp_path: Path, server: FakeServer) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="openai:fake", openai_base_url=f"{server.url}/v1",
                           model_retries=1, model_timeout=2) as c:
        yield c


def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


async def test_tool_call_round_trip_over_the_wire(core: PenguinCore, server: FakeServer) -> None:
    core.tools.register(shout)
    call = {"id": "call_1", "type": "function", "function": {"name": "shout", "arguments": '{"text": "hi"}'}}
    server.reply(json_reply(completion(None, [call])), json_reply(completion("It says HI.")))
    result = await core.chat("shout hi", agent_id="wire")
    assert str(result) == "It says HI."
    assert result.usage.input_tokens == 20 and result.usage.output_tokens == 4
    first, second = (r.json() for r in server.requests)
    assert first["model"] == "fake" and first["messages"][-1] == {"role": "user", "content": "shout hi"}
    assert any(t["function"]["name"] == "shout" for t in first["tools"])
    assert second["messages"][-2]["tool_calls"] == [call]
    assert second["messages"][-1] == {"role": "tool", "content": "HI", "tool_call_id": "call_1", "name": "shout"}
    assert [m.role for m in await core.history("wire")] == ["user", "assistant", "tool", "assistant"]


async def test_server_errors_raise_model_error_and_are_recorded(core: PenguinCore, server: FakeServer) -> None:
    boom = json_reply({"error": {"message": "upstream exploded"}}, status=500)
    server.reply(boom, boom)
    with pytest.raises(ModelError) as info:
        await core.chat("hello", agent_id="wire")
    assert info.value.status_code == 500 and "upstream exploded" in info.value.detail
    assert len(server.requests) == 2  # one retry
    history = await core.history("wire")
    assert [(m.role, m.message_type) for m in history] == [("user", "message"), ("system", "status")]


async def test_garbage_body_is_a_model_error(core: PenguinCore, server: FakeServer) -> None:
    server.reply(raw_reply(200, b"<html>not json</html>", content_type="text/html"))
    with pytest.raises(ModelError):
        await core.chat("hello", agent_id="wire")


async def test_stream_dropped_midway_ends_with_an_error_event(core: PenguinCore, server: FakeServer) -> None:
    chunks = [{"choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]} for part in ("Hel", "lo")]
    server.reply(sse_reply(openai_sse(chunks), drop_after=1))
    events = [e async for e in core.stream_chat("hi", agent_id="wire")]
    assert [e.type for e in events] == ["start", "delta", "error"]
    assert events[1].data["text"] == "Hel"
    assert events[-1].data["status"] == 502
    assert orjson.loads(orjson.dumps(events[-1].to_dict()))["type"] == "error"
    assert [m.message_type for m in await core.history("wire")] == ["message", "status"]
