"""The OpenAI-compatible wire client against a fake chat-completions server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_servers import FakeServer, Reply, hang_up, json_reply, openai_sse, raw_reply, sse_reply, stall

from penguin.errors import ModelError
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
from penguin.models.openai import OpenAIModel

HELLO: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
WEATHER = ToolSchema(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def completion(
    content: str | None = "Hello!",
    *,
    tool_calls: list[Any] | None = None,
    usage: Any = None,
    finish: str = "stop",
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls is not None:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-test-2024",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def make_model(server: FakeServer, **overrides: Any) -> OpenAIModel:
    options: dict[str, Any] = {
        "base_url": f"{server.url}/v1",
        "api_key": "sk-test",
        "timeout": 2.0,
        "retries": 2,
        "backoff": 0.001,
    }
    options.update(overrides)
    return OpenAIModel("gpt-test", **options)


@pytest.fixture
async def model(server: FakeServer) -> AsyncIterator[OpenAIModel]:
    model = make_model(server)
    yield model
    await model.aclose()


async def collect(model: OpenAIModel, request: ModelRequest) -> list[StreamEvent]:
    return [event async for event in model.stream(request)]


# Completions -----------------------------------------------------------------------------------


async def test_complete_sends_messages_and_parses_text_and_usage(
    server: FakeServer, model: OpenAIModel
) -> None:
    server.reply(
        json_reply(completion(usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}))
    )

    response = await model.complete(ModelRequest(messages=HELLO))

    assert response == ModelResponse(
        text="Hello!",
        usage=Usage(input_tokens=12, output_tokens=3),
        finish_reason="stop",
        model="openai:gpt-test",
    )
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"model": "gpt-test", "messages": HELLO}


async def test_one_keep_alive_connection_serves_every_call(server: FakeServer, model: OpenAIModel) -> None:
    server.reply(json_reply(completion()), json_reply(completion()), json_reply(completion()))

    for _ in range(3):
        await model.complete(ModelRequest(messages=HELLO))

    assert (len(server.requests), server.connections) == (3, 1)


async def test_tools_are_offered_and_tool_calls_parsed(server: FakeServer, model: OpenAIModel) -> None:
    call = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    server.reply(
        json_reply(completion(None, tool_calls=[call], finish="tool_calls")), json_reply(completion("Sunny."))
    )

    first = await model.complete(ModelRequest(messages=HELLO, tools=[WEATHER]))

    assert first.tool_calls == (ToolCall(id="call_abc", name="get_weather", arguments='{"city":"Oslo"}'),)
    assert (first.text, first.finish_reason) == ("", "tool_calls")
    assert server.requests[0].json()["tools"] == [WEATHER.to_openai()]

    history: list[dict[str, Any]] = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [first.tool_calls[0].to_wire()]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21C"},
    ]
    second = await model.complete(ModelRequest(messages=history, tools=[WEATHER]))

    assert second.text == "Sunny."
    assert server.requests[1].json()["messages"] == history


async def test_local_server_quirks_are_tolerated(server: FakeServer, model: OpenAIModel) -> None:
    """llama.cpp / Ollama style: no usage, no tool call id, content null, arguments as an object."""
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}
    server.reply(json_reply(completion(None, tool_calls=[call], finish="tool_calls")))

    response = await model.complete(ModelRequest(messages=HELLO))

    assert response == ModelResponse(
        text="",
        tool_calls=(ToolCall(id="call_0", name="get_weather", arguments='{"city":"Oslo"}'),),
        usage=Usage(),
        finish_reason="tool_calls",
        model="openai:gpt-test",
    )


async def test_parameters_pass_through_and_penguin_only_ones_are_dropped(
    server: FakeServer, model: OpenAIModel
) -> None:
    server.reply(json_reply(completion()))
    parameters = {
        "temperature": 0.2,
        "max_tokens": 64,
        "top_p": 0.9,
        "delay": 1.5,
        "chunk": 4,
        "tool": "x",
        "arguments": {"a": 1},
        "context_tokens": 8000,
    }

    await model.complete(ModelRequest(messages=HELLO, parameters=parameters))

    assert server.requests[0].json() == {
        "model": "gpt-test",
        "messages": HELLO,
        "temperature": 0.2,
        "max_tokens": 64,
        "top_p": 0.9,
    }


async def test_no_authorization_header_without_a_key(server: FakeServer) -> None:
    model = make_model(server, api_key=None)
    server.reply(json_reply(completion()))

    await model.complete(ModelRequest(messages=HELLO))
    await model.aclose()

    assert "authorization" not in server.requests[0].headers


async def test_missing_key_against_the_public_api_says_which_variable_to_set() -> None:
    model = OpenAIModel(
        "gpt-4o-mini", base_url="https://api.openai.com/v1", api_key=None, timeout=1, retries=0
    )

    with pytest.raises(ModelError, match="OPENAI_API_KEY") as complete_error:
        await model.complete(ModelRequest(messages=HELLO))
    with pytest.raises(ModelError, match="OPENAI_API_KEY"):
        await collect(model, ModelRequest(messages=HELLO))

    assert (complete_error.value.status_code, complete_error.value.retryable) == (None, False)
    await model.aclose()


# Streaming -------------------------------------------------------------------------------------


async def test_stream_yields_text_and_tool_call_deltas_then_done(
    server: FakeServer, model: OpenAIModel
) -> None:
    server.reply(
        sse_reply(
            openai_sse(
                [
                    chunk({"role": "assistant", "content": ""}),
                    chunk({"content": "Let me "}),
                    chunk({"content": "check."}),
                    chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""},
                                }
                            ]
                        }
                    ),
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
                    chunk({}, finish="tool_calls"),
                    {"id": "c", "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 9}},
                ]
            )
        )
    )

    events = await collect(
        model, ModelRequest(messages=HELLO, tools=[WEATHER], parameters={"temperature": 0})
    )

    assert events == [
        TextDelta(text="Let me "),
        TextDelta(text="check."),
        ToolCallDelta(index=0, id="call_1", name="get_weather"),
        ToolCallDelta(index=0, arguments='{"city":'),
        ToolCallDelta(index=0, arguments='"Oslo"}'),
        StreamDone(
            response=ModelResponse(
                text="Let me check.",
                tool_calls=(ToolCall(id="call_1", name="get_weather", arguments='{"city":"Oslo"}'),),
                usage=Usage(input_tokens=20, output_tokens=9),
                finish_reason="tool_calls",
                model="openai:gpt-test",
            )
        ),
    ]
    body = server.requests[0].json()
    assert (body["stream"], body["stream_options"], body["temperature"]) == (True, {"include_usage": True}, 0)


async def test_stream_without_usage_or_ids_and_with_repeated_names(
    server: FakeServer, model: OpenAIModel
) -> None:
    fragment = {"function": {"name": "get_weather", "arguments": "{}"}}
    server.reply(sse_reply(openai_sse([chunk({"content": None, "tool_calls": [fragment, fragment]})])))

    events = await collect(model, ModelRequest(messages=HELLO))

    assert events[-1] == StreamDone(
        response=ModelResponse(
            text="",
            tool_calls=(
                ToolCall(id="call_0", name="get_weather", arguments="{}"),
                ToolCall(id="call_1", name="get_weather", arguments="{}"),
            ),
            finish_reason="tool_calls",
            model="openai:gpt-test",
        )
    )


async def test_connection_dropped_mid_stream_raises_without_retry(
    server: FakeServer, model: OpenAIModel
) -> None:
    server.reply(sse_reply(openai_sse([chunk({"content": "Hel"}), chunk({"content": "lo"})]), drop_after=1))
    seen: list[StreamEvent] = []

    with pytest.raises(ModelError, match="connection failed"):
        async for event in model.stream(ModelRequest(messages=HELLO)):
            seen.append(event)

    assert seen == [TextDelta(text="Hel")]
    assert len(server.requests) == 1


async def test_stream_is_retried_before_any_response(server: FakeServer, model: OpenAIModel) -> None:
    server.reply(
        hang_up(),
        json_reply({"error": {"message": "slow down"}}, status=429),
        sse_reply(openai_sse([chunk({"content": "ok"})])),
    )

    events = await collect(model, ModelRequest(messages=HELLO))

    assert events[0] == TextDelta(text="ok")
    assert len(server.requests) == 3


async def test_error_chunk_mid_stream_raises(server: FakeServer, model: OpenAIModel) -> None:
    error = {"error": {"message": "provider overloaded", "code": 502}}
    server.reply(sse_reply(openai_sse([chunk({"content": "a"}), error])))

    with pytest.raises(ModelError, match="provider overloaded") as caught:
        await collect(model, ModelRequest(messages=HELLO))

    assert (caught.value.status_code, caught.value.retryable) == (502, True)


# Failures --------------------------------------------------------------------------------------


async def test_429_is_retried_then_succeeds(server: FakeServer, model: OpenAIModel) -> None:
    server.reply(
        json_reply({"error": {"message": "Rate limit reached"}}, status=429, headers={"retry-after": "0"}),
        json_reply(completion("after the wait")),
    )

    response = await model.complete(ModelRequest(messages=HELLO))

    assert response.text == "after the wait"
    assert len(server.requests) == 2


async def test_500_exhausting_retries_raises_with_status_and_provider_message(
    server: FakeServer, model: OpenAIModel
) -> None:
    failure = json_reply({"error": {"message": "upstream exploded", "type": "server_error"}}, status=500)
    server.reply(failure, failure, failure)

    with pytest.raises(ModelError) as caught:
        await model.complete(ModelRequest(messages=HELLO))

    error = caught.value
    assert (error.provider, error.status_code, error.retryable) == ("openai", 500, True)
    assert str(error) == "openai (HTTP 500): upstream exploded"
    assert len(server.requests) == 3  # the first attempt and retries=2


async def test_400_is_not_retried(server: FakeServer, model: OpenAIModel) -> None:
    server.reply(
        json_reply({"object": "error", "message": "max_tokens is too large", "code": 400}, status=400)
    )

    with pytest.raises(ModelError, match="max_tokens is too large") as caught:
        await model.complete(ModelRequest(messages=HELLO))

    assert (caught.value.status_code, caught.value.retryable) == (400, False)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b'{"choices": []}', "unexpected response shape"),
        (b'{"choices": [{"message": "hi"}]}', "unexpected response shape"),
        (b"[1, 2]", "unexpected response shape"),
    ],
)
async def test_garbage_body_raises_model_error(
    server: FakeServer, model: OpenAIModel, body: bytes, match: str
) -> None:
    server.reply(raw_reply(200, body, content_type="application/json"))

    with pytest.raises(ModelError, match=match) as caught:
        await model.complete(ModelRequest(messages=HELLO))

    assert caught.value.status_code == 200


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        (sse_reply(["data: {not json\n\n"]), "not JSON"),
        (sse_reply(["data: [1]\n\n"]), "unexpected response shape"),
        (sse_reply([]), "without any event"),
        (raw_reply(200, b"<html>hello</html>"), "without any event"),
        (json_reply({"error": {"message": "no credits"}}), "expected an event stream, got JSON: no credits"),
    ],
)
async def test_garbage_stream_raises_model_error(
    server: FakeServer, model: OpenAIModel, reply: Reply, match: str
) -> None:
    server.reply(reply)

    with pytest.raises(ModelError, match=match) as caught:
        await collect(model, ModelRequest(messages=HELLO))

    assert caught.value.status_code == 200


async def test_timeout_is_retried_then_raised(server: FakeServer) -> None:
    model = make_model(server, timeout=0.1, retries=1)
    server.reply(stall(5), stall(5))

    with pytest.raises(ModelError, match="timed out") as caught:
        await model.complete(ModelRequest(messages=HELLO))
    await model.aclose()

    assert (caught.value.status_code, caught.value.retryable) == (None, True)
    assert len(server.requests) == 2


async def test_unreachable_server_raises_model_error(server: FakeServer) -> None:
    url = server.url
    await server.stop()
    model = OpenAIModel("m", base_url=url, api_key=None, timeout=1, retries=1, backoff=0.001)

    with pytest.raises(ModelError, match="connection failed"):
        await model.complete(ModelRequest(messages=HELLO))
    await model.aclose()


async def test_aclose_then_reuse_opens_a_new_client(server: FakeServer, model: OpenAIModel) -> None:
    server.reply(json_reply(completion("one")), json_reply(completion("two")))

    assert (await model.complete(ModelRequest(messages=HELLO))).text == "one"
    await model.aclose()
    assert (await model.complete(ModelRequest(messages=HELLO))).text == "two"

    assert server.connections == 2


async def test_streams_reuse_one_connection_and_early_exit_releases_it(
    server: FakeServer, model: OpenAIModel
) -> None:
    events = openai_sse([chunk({"content": "a"}), chunk({"content": "b"})])
    server.reply(sse_reply(events), sse_reply(events), sse_reply(events), json_reply(completion()))

    await collect(model, ModelRequest(messages=HELLO))
    await collect(model, ModelRequest(messages=HELLO))
    assert server.connections == 1

    stream = model.stream(ModelRequest(messages=HELLO))
    assert await anext(stream) == TextDelta(text="a")
    await stream.aclose()  # the caller gave up: the response is closed, not leaked
    assert (await model.complete(ModelRequest(messages=HELLO))).text == "Hello!"
