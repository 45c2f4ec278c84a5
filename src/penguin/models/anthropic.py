"""A wire client for the Anthropic Messages API, on one pooled aiohttp session.

Penguin's messages are OpenAI-shaped, so this module converts at its edge: system messages become
the top-level ``system``, assistant ``tool_calls`` become ``tool_use`` blocks, and ``tool`` messages
become ``tool_result`` blocks in a user turn (consecutive same-role turns are merged, as the API
requires strict alternation). Parameters are passed through except Penguin-only ones and the
OpenAI-only ones the Messages API rejects, so one agent configuration works with either provider.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import orjson

from penguin.errors import ModelError
from penguin.models._http import (
    PENGUIN_ONLY_PARAMETERS,
    RetryPolicy,
    WireClient,
    decode_json,
    malformed,
    missing_key_detail,
)
from penguin.models.base import (
    ModelRequest,
    ModelResponse,
    StreamAssembler,
    StreamDone,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSchema,
    Usage,
    WireMessage,
)

PROVIDER = "anthropic"
PUBLIC_HOST = "api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096

#: Dropped from the body: Penguin-only, set by this client, or OpenAI-only (rejected as unknown).
_NOT_SENT = PENGUIN_ONLY_PARAMETERS | {
    "stream",
    "stream_options",
    "max_completion_tokens",
    "stop",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "n",
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "response_format",
    "parallel_tool_calls",
    "user",
}

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}
_TOOL_CHOICE = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
_RETRYABLE_STREAM_ERRORS = {"overloaded_error", "api_error", "rate_limit_error"}


class AnthropicModel:
    """A ``Model`` served by the Anthropic Messages API (``POST /v1/messages``)."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float,
        retries: int,
        backoff: float = 0.25,
        provider: str = PROVIDER,
        headers: Mapping[str, str] | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        """Build the client; no connection is opened until the first call.

        Args:
            model: The model name, e.g. ``claude-sonnet-4-5``.
            base_url: API root without the version, e.g. ``https://api.anthropic.com``.
            api_key: Sent as ``x-api-key``; ``None`` sends none (for gateways that need none).
            timeout: Seconds allowed for each connect, read, write and pool wait.
            retries: Retries after the first attempt on 429, 5xx, timeouts and connection errors.
            backoff: Seconds before the first retry; doubles on each further retry.
            provider: The provider name in ``name`` and errors (a named endpoint of
                ``penguin.providers``, or the built-in one).
            headers: Extra headers sent with every request (a gateway's own, e.g. ``HTTP-Referer``).
            on_retry: Called with the provider name before each retry (the retry metric).
        """
        self.name = f"{provider}:{model}"
        self.provider = provider
        self.model = model
        auth_headers = {"anthropic-version": API_VERSION}
        if api_key:
            auth_headers["x-api-key"] = api_key
        key_error = missing_key_detail(base_url, api_key, public_host=PUBLIC_HOST, env_prefix="ANTHROPIC")
        self._http = WireClient(
            provider=provider,
            base_url=base_url,
            headers={**(headers or {}), **auth_headers},
            on_retry=on_retry,
            timeout=timeout,
            policy=RetryPolicy(retries=retries, backoff=backoff),
            key_error=key_error,
        )

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        params = request.parameters
        body: dict[str, Any] = {key: value for key, value in params.items() if key not in _NOT_SENT}
        system, messages = convert_messages(request.messages)
        body["model"] = self.model
        body["messages"] = messages
        max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
        body["max_tokens"] = max_tokens or DEFAULT_MAX_TOKENS
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = convert_tools(request.tools)
        if (stop := params.get("stop")) is not None:
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if isinstance(choice := params.get("tool_choice"), str | dict):
            body["tool_choice"] = _tool_choice(choice)
        return body

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one Messages call.

        Raises:
            ModelError: the API failed after retries, or answered with something unparseable.
        """
        return await self._http.post("/v1/messages", self._body(request), self._parse_message)

    def _parse_message(self, data: Any) -> ModelResponse:
        if data.get("type") == "error":
            raise _stream_error(data)
        text: list[str] = []
        calls: list[ToolCall] = []
        for block in data["content"]:
            if block["type"] == "text":
                text.append(block["text"])
            elif block["type"] == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                calls.append(ToolCall(id=block["id"], name=block["name"], arguments=arguments))
        return ModelResponse(
            text="".join(text),
            tool_calls=tuple(calls),
            usage=_usage(data.get("usage")),
            finish_reason="tool_calls" if calls else _finish_reason(data.get("stop_reason")),
            model=self.name,
        )

    async def stream(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        """Stream one Messages call; the last event is ``StreamDone``.

        Raises:
            ModelError: the API failed after retries, sent an ``error`` event or something
                unparseable, or the connection dropped mid-stream (never retried once deltas were
                yielded).
        """
        body = self._body(request)
        body["stream"] = True
        assembler = StreamAssembler(self.name)
        # Content block index -> tool call index: text blocks share the index space with tool_use.
        tool_blocks: dict[int, int] = {}
        done = False
        async with aclosing(self._http.post_stream("/v1/messages", body)) as events:
            async for _event, data in events:
                if done:
                    continue  # read on to the end of the body, so the connection goes back to the pool
                payload = decode_json(self.provider, 200, data)
                with malformed(self.provider, 200):
                    kind = payload["type"]
                    deltas = _stream_deltas(kind, payload, assembler, tool_blocks)
                for delta in deltas:
                    assembler.add(delta)
                    yield delta
                done = kind == "message_stop"
        yield StreamDone(response=assembler.response())

    async def aclose(self) -> None:
        await self._http.aclose()


def _stream_deltas(
    kind: str, payload: Any, assembler: StreamAssembler, tool_blocks: dict[int, int]
) -> list[TextDelta | ToolCallDelta]:
    """Deltas in one stream event; records usage and the stop reason on ``assembler``."""
    if kind == "content_block_delta":
        delta = payload["delta"]
        if delta["type"] == "text_delta" and delta["text"]:
            return [TextDelta(text=delta["text"])]
        if delta["type"] == "input_json_delta" and delta["partial_json"]:
            return [ToolCallDelta(index=tool_blocks[payload["index"]], arguments=delta["partial_json"])]
        return []  # thinking, signature and citation deltas are not part of the answer
    if kind == "content_block_start":
        block = payload["content_block"]
        if block["type"] == "tool_use":
            index = tool_blocks[payload["index"]] = len(tool_blocks)
            return [ToolCallDelta(index=index, id=block["id"], name=block["name"])]
        if block["type"] == "text" and block.get("text"):
            return [TextDelta(text=block["text"])]
    elif kind == "message_start":
        assembler.usage = _usage(payload["message"].get("usage"))
    elif kind == "message_delta":
        if stop := payload.get("delta", {}).get("stop_reason"):
            assembler.finish_reason = _finish_reason(stop)
        _update_usage(assembler.usage, payload.get("usage"))
    elif kind == "error":
        raise _stream_error(payload)
    return []


# Conversion from OpenAI shape ---------------------------------------------------------------


def convert_messages(messages: Sequence[WireMessage]) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI-shaped messages as Anthropic's ``(system, messages)``."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(block["text"] for block in _content_blocks(content) if block.get("type") == "text")
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(message)]
        elif role == "assistant":
            calls = message.get("tool_calls") or ()
            blocks = _content_blocks(content) + [_tool_use(i, call) for i, call in enumerate(calls)]
        else:
            role, blocks = "user", _content_blocks(content)
        if not blocks:
            continue  # the API rejects empty turns
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return "\n\n".join(system), out


def convert_tools(tools: Iterable[ToolSchema]) -> list[dict[str, Any]]:
    return [
        {"name": tool.name, "description": tool.description, "input_schema": dict(tool.parameters)}
        for tool in tools
    ]


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    """OpenAI content (a string or a list of parts) as Anthropic content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            part = {"type": "text", "text": part}
        if part.get("type") == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            blocks.append(_image(part["image_url"]))
        else:
            blocks.append(part)  # already an Anthropic block (image, document, ...)
    return blocks


def _image(image_url: Any) -> dict[str, Any]:
    url = image_url["url"] if isinstance(image_url, dict) else str(image_url)
    if url.startswith("data:") and ";base64," in url:
        media_type, _, data = url.removeprefix("data:").partition(";base64,")
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _tool_use(position: int, call: Mapping[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    raw = function.get("arguments") or "{}"
    try:
        arguments = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        # ``input`` must be an object; keep what the model wrote so it can see its own mistake.
        arguments = {"_raw_arguments": raw}
    return {
        "type": "tool_use",
        "id": call.get("id") or f"call_{position}",
        "name": function.get("name", ""),
        "input": arguments,
    }


def _tool_result(message: WireMessage) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or ""}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            block["content"] = content
    elif content is not None:
        block["content"] = _content_blocks(content)
    return block


def _tool_choice(choice: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        return _TOOL_CHOICE.get(choice, {"type": choice})
    if choice.get("type") == "function":
        return {"type": "tool", "name": choice["function"]["name"]}
    return choice


# Parsing -------------------------------------------------------------------------------------


def _finish_reason(stop_reason: Any) -> str:
    if not stop_reason:
        return "stop"
    return _FINISH_REASONS.get(str(stop_reason), str(stop_reason))


def _usage(raw: Mapping[str, Any] | None) -> Usage:
    usage = Usage()
    _update_usage(usage, raw)
    return usage


def _update_usage(usage: Usage, raw: Mapping[str, Any] | None) -> None:
    """Apply reported counts (cumulative in every event); cache reads and writes count as input."""
    if not raw:
        return
    inputs = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    if any(raw.get(key) is not None for key in inputs):
        usage.input_tokens = sum(int(raw.get(key) or 0) for key in inputs)
    if raw.get("output_tokens") is not None:
        usage.output_tokens = int(raw["output_tokens"])


def _stream_error(payload: Mapping[str, Any]) -> ModelError:
    """The ``ModelError`` for an ``error`` event or body: ``{"type": "error", "error": {...}}``."""
    error = payload.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return ModelError(
        f"{kind or 'error'}: {message or 'no message'}",
        provider=PROVIDER,
        retryable=kind in _RETRYABLE_STREAM_ERRORS,
    )
