"""The Anthropic Messages wire client against a fake Messages server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_servers import FakeServer, anthropic_sse, hang_up, json_reply, raw_reply, sse_reply, stall

from penguin.errors import ModelError
from penguin.models.anthropic import AnthropicModel, convert_messages
from penguin.models.base import (
    ModelRequest,
    ModelResponse,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSchema,
    Usage,
)

HELLO: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
WEATHER = ToolSchema(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def message(*content: dict[str, Any], stop: str = "end_turn", usage: Any = None) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-20250101",
        "content": list(content),
        "stop_reason": stop,
        "usage": usage if usage is not None else {"input_tokens": 10, "output_tokens": 4},
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def api_error(kind: str, detail: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": detail}}


def make_model(server: FakeServer, **overrides: Any) -> AnthropicModel:
    options: dict[str, Any] = {
        "base_url": server.url,
        "api_key": "sk-ant-test",
        "timeout": 2.0,
        "retries": 2,
        "backoff": 0.001,
    }
    options.update(overrides)
    return AnthropicModel("claude-test", **options)


@pytest.fixture
async def model(server: FakeServer) -> AsyncIterator[AnthropicModel]:
    model = make_model(server)
    yield model
    await model.aclose()


async def collect(model: AnthropicModel, request: ModelRequest) -> list[StreamEvent]:
    return [event async for event in model.stream(request)]


# Requests --------------------------------------------------------------------------------------


async def test_complete_sends_messages_api_request_and_parses_text(
    server: FakeServer, model: AnthropicModel
) -> None:
    server.reply(json_reply(message(text("Hello"), text(" there."))))

    response = await model.complete(ModelRequest(messages=HELLO))

    assert response == ModelResponse(
        text="Hello there.",
        usage=Usage(input_tokens=10, output_tokens=4),
        finish_reason="stop",
        model="anthropic:claude-test",
    )
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.json() == {
        "model": "claude-test",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [text("Hi")]}],
        "max_tokens": 4096,
    }


def test_openai_shaped_history_converts_to_messages_blocks() -> None:
    history: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Oslo and Bergen?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "not json"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"},
        {"role": "system", "content": "Answer in one line."},
        {"role": "assistant", "content": None},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]

    system, messages = convert_messages(history)

    assert system == "Be brief.\n\nAnswer in one line."
    assert messages == [
        {"role": "user", "content": [text("Weather in Oslo and Bergen?")]},
        {
            "role": "assistant",
            "content": [
                text("Checking."),
                {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"_raw_arguments": "not json"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "rain"},
                text("And"),
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            ],
        },
    ]


async def test_tools_are_offered_and_tool_use_parsed(server: FakeServer, model: AnthropicModel) -> None:
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
    server.reply(json_reply(message(text("Let me check."), tool_use, stop="tool_use")))

    response = await model.complete(ModelRequest(messages=HELLO, tools=[WEATHER]))

    assert response.tool_calls == (ToolCall(id="toolu_1", name="get_weather", arguments='{"city":"Oslo"}'),)
    assert (response.text, response.finish_reason) == ("Let me check.", "tool_calls")
    assert server.requests[0].json()["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": dict(WEATHER.parameters),
        }
    ]


async def test_parameters_pass_through_mapped_and_dropped(server: FakeServer, model: AnthropicModel) -> None:
    server.reply(json_reply(message(text("ok"))))
    parameters = {
        "temperature": 0.3,
        "max_tokens": 256,
        "top_k": 5,
        "stop": "END",
        "tool_choice": "required",
        "seed": 7,
        "delay": 1,
        "chunk": 4,
        "tool": "x",
        "arguments": {},
        "context_tokens": 9000,
    }

    await model.complete(ModelRequest(messages=HELLO, parameters=parameters))

    body = server.requests[0].json()
    del body["messages"], body["system"]
    assert body == {
        "model": "claude-test",
        "temperature": 0.3,
        "max_tokens": 256,
        "top_k": 5,
        "stop_sequences": ["END"],
        "tool_choice": {"type": "any"},
    }


async def test_cache_tokens_count_as_input(server: FakeServer, model: AnthropicModel) -> None:
    usage = {
        "input_tokens": 5,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 50,
        "output_tokens": 7,
    }
    server.reply(json_reply(message(text("ok"), usage=usage)))

    response = await model.complete(ModelRequest(messages=HELLO))

    assert response.usage == Usage(input_tokens=155, output_tokens=7)


async def test_custom_base_url_without_key_sends_no_key(server: FakeServer) -> None:
    model = make_model(server, api_key=None)
    server.reply(json_reply(message(text("ok"))))

    await model.complete(ModelRequest(messages=HELLO))
    await model.aclose()

    assert "x-api-key" not in server.requests[0].headers


async def test_missing_key_against_the_public_api_says_which_variable_to_set() -> None:
    model = AnthropicModel(
        "claude-x", base_url="https://api.anthropic.com", api_key=None, timeout=1, retries=0
    )

    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY"):
        await model.complete(ModelRequest(messages=HELLO))
    with pytest.raises(ModelError, match="ANTHROPIC_API_KEY"):
        await collect(model, ModelRequest(messages=HELLO))
    await model.aclose()


# Streaming -------------------------------------------------------------------------------------

STREAM: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {**message(), "content": [], "usage": {"input_tokens": 25, "output_tokens": 1}},
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}},
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"city":'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 30},
    },
    {"type": "message_stop"},
]


async def test_stream_yields_text_and_tool_deltas_then_done(
    server: FakeServer, model: AnthropicModel
) -> None:
    server.reply(sse_reply(anthropic_sse(STREAM)))

    events = await collect(model, ModelRequest(messages=HELLO, tools=[WEATHER]))

    assert events == [
        TextDelta(text="Let me "),
        TextDelta(text="check."),
        ToolCallDelta(index=0, id="toolu_1", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city":'),
        ToolCallDelta(index=0, arguments='"Oslo"}'),
        StreamDone(
            response=ModelResponse(
                text="Let me check.",
                tool_calls=(ToolCall(id="toolu_1", name="get_weather", arguments='{"city":"Oslo"}'),),
                usage=Usage(input_tokens=25, output_tokens=30),
                finish_reason="tool_calls",
                model="anthropic:claude-test",
            )
        ),
    ]
    assert server.requests[0].json()["stream"] is True


async def test_stream_error_event_raises(server: FakeServer, model: AnthropicModel) -> None:
    server.reply(sse_reply(anthropic_sse([STREAM[0], api_error("overloaded_error", "Overloaded")])))

    with pytest.raises(ModelError, match="overloaded_error: Overloaded") as caught:
        await collect(model, ModelRequest(messages=HELLO))

    assert caught.value.retryable is True


async def test_connection_dropped_mid_stream_raises_without_retry(
    server: FakeServer, model: AnthropicModel
) -> None:
    server.reply(sse_reply(anthropic_sse(STREAM), drop_after=4))
    seen: list[StreamEvent] = []

    with pytest.raises(ModelError, match="connection failed"):
        async for event in model.stream(ModelRequest(messages=HELLO)):
            seen.append(event)

    assert seen == [TextDelta(text="Let me ")]
    assert len(server.requests) == 1


async def test_stream_is_retried_before_any_response(server: FakeServer, model: AnthropicModel) -> None:
    server.reply(hang_up(), sse_reply(anthropic_sse(STREAM)))

    events = await collect(model, ModelRequest(messages=HELLO))

    assert isinstance(events[-1], StreamDone)
    assert events[-1].response.text == "Let me check."
    assert len(server.requests) == 2


# Failures --------------------------------------------------------------------------------------


async def test_429_is_retried_then_succeeds(server: FakeServer, model: AnthropicModel) -> None:
    server.reply(
        json_reply(api_error("rate_limit_error", "Slow down"), status=429, headers={"retry-after": "0"}),
        json_reply(api_error("overloaded_error", "Overloaded"), status=529),
        json_reply(message(text("finally"))),
    )

    response = await model.complete(ModelRequest(messages=HELLO))

    assert response.text == "finally"
    assert len(server.requests) == 3


async def test_500_exhausting_retries_raises_with_status_and_provider_message(
    server: FakeServer, model: AnthropicModel
) -> None:
    failure = json_reply(api_error("api_error", "Internal server error"), status=500)
    server.reply(failure, failure, failure)

    with pytest.raises(ModelError) as caught:
        await model.complete(ModelRequest(messages=HELLO))

    assert (caught.value.provider, caught.value.status_code, caught.value.retryable) == (
        "anthropic",
        500,
        True,
    )
    assert str(caught.value) == "anthropic (HTTP 500): Internal server error"
    assert len(server.requests) == 3


async def test_400_is_not_retried(server: FakeServer, model: AnthropicModel) -> None:
    server.reply(json_reply(api_error("invalid_request_error", "messages: roles must alternate"), status=400))

    with pytest.raises(ModelError, match="roles must alternate") as caught:
        await model.complete(ModelRequest(messages=HELLO))

    assert (caught.value.status_code, caught.value.retryable) == (400, False)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "body", "match"),
    [
        (200, b"not json at all", "not JSON"),
        (200, b'{"type": "message", "content": [{"type": "text"}]}', "unexpected response shape"),
        (200, b'"just a string"', "unexpected response shape"),
        (404, b"<html>nope</html>", "<html>nope</html>"),
    ],
)
async def test_garbage_body_raises_model_error(
    server: FakeServer, model: AnthropicModel, status: int, body: bytes, match: str
) -> None:
    server.reply(raw_reply(status, body))

    with pytest.raises(ModelError, match=match) as caught:
        await model.complete(ModelRequest(messages=HELLO))

    assert caught.value.status_code == status


async def test_timeout_is_retried_then_raised(server: FakeServer) -> None:
    model = make_model(server, timeout=0.1, retries=1)
    server.reply(stall(5), stall(5))

    with pytest.raises(ModelError, match="timed out") as caught:
        await model.complete(ModelRequest(messages=HELLO))
    await model.aclose()

    assert caught.value.retryable is True
    assert len(server.requests) == 2
