"""A wire client for OpenAI-compatible chat-completions servers, on one pooled aiohttp session.

Serves OpenAI itself and anything that speaks its protocol: OpenRouter, vLLM, Ollama, llama.cpp.
It talks the wire protocol directly instead of using the ``openai`` SDK, whose per-message request
transform is measurable on Penguin's hot path: messages already arrive in OpenAI shape and go
straight into an orjson-encoded body. Servers differ in small ways, so parsing tolerates missing
``usage``, missing tool call ids and indexes, ``content: null`` and arguments sent as objects.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
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
    Usage,
)

PROVIDER = "openai"
PUBLIC_HOST = "api.openai.com"


class OpenAIModel:
    """A ``Model`` served by an OpenAI-compatible ``/chat/completions`` endpoint."""

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
            model: The server's model name, e.g. ``gpt-4o-mini`` or ``meta-llama/Llama-3.1-8B``.
            base_url: API root including the version, e.g. ``https://api.openai.com/v1``.
            api_key: Sent as a bearer token; ``None`` sends no ``Authorization`` header.
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
        auth_headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        key_error = missing_key_detail(base_url, api_key, public_host=PUBLIC_HOST, env_prefix="OPENAI")
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
        messages = request.messages
        body: dict[str, Any] = {
            key: value for key, value in request.parameters.items() if key not in PENGUIN_ONLY_PARAMETERS
        }
        body["model"] = self.model
        # orjson encodes lists and tuples natively; only an exotic Sequence needs a copy.
        body["messages"] = messages if isinstance(messages, list | tuple) else list(messages)
        if request.tools:
            body["tools"] = [tool.to_openai() for tool in request.tools]
        return body

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one chat completion.

        Raises:
            ModelError: the server failed after retries, or answered with something unparseable.
        """
        body = self._body(request)
        body.pop("stream", None)
        body.pop("stream_options", None)
        return await self._http.post("/chat/completions", body, self._parse_completion)

    def _parse_completion(self, data: Any) -> ModelResponse:
        _raise_embedded_error(data)
        choice = data["choices"][0]
        message = choice["message"]
        calls = tuple(
            ToolCall(
                id=call.get("id") or f"call_{index}",
                name=call["function"]["name"],
                arguments=_arguments_text(call["function"].get("arguments")),
            )
            for index, call in enumerate(message.get("tool_calls") or ())
        )
        finish = choice.get("finish_reason") or ("tool_calls" if calls else "stop")
        return ModelResponse(
            text=message.get("content") or "",
            tool_calls=calls,
            usage=_usage(data.get("usage")),
            finish_reason=str(finish),
            model=self.name,
        )

    async def stream(self, request: ModelRequest) -> AsyncGenerator[StreamEvent, None]:
        """Stream one chat completion; the last event is ``StreamDone``.

        Raises:
            ModelError: the server failed after retries, answered with something unparseable, or
                the connection dropped mid-stream (never retried once deltas were yielded).
        """
        body = self._body(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        assembler = StreamAssembler(self.name)
        names: dict[int, str] = {}
        done = False
        async with aclosing(self._http.post_stream("/chat/completions", body)) as events:
            async for _event, data in events:
                # Read on past [DONE] to the end of the body, so the connection goes back to the pool.
                done = done or data == "[DONE]"
                if done:
                    continue
                chunk = decode_json(self.provider, 200, data)
                with malformed(self.provider, 200):
                    deltas = self._parse_chunk(chunk, assembler, names)
                for delta in deltas:
                    assembler.add(delta)
                    yield delta
        yield StreamDone(response=assembler.response())

    @staticmethod
    def _parse_chunk(
        chunk: Any, assembler: StreamAssembler, names: dict[int, str]
    ) -> list[TextDelta | ToolCallDelta]:
        """Deltas in one streamed chunk; records usage and finish reason on ``assembler``."""
        _raise_embedded_error(chunk)
        if usage := chunk.get("usage"):
            assembler.usage = _usage(usage)
        deltas: list[TextDelta | ToolCallDelta] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if text := delta.get("content"):
                deltas.append(TextDelta(text=text))
            for position, call in enumerate(delta.get("tool_calls") or ()):
                index = call.get("index")
                index = position if index is None else int(index)
                function = call.get("function") or {}
                name = function.get("name") or None
                # Some servers repeat the whole name in every fragment; the assembler concatenates.
                if name is not None and names.get(index) == name:
                    name = None
                elif name is not None:
                    names[index] = names.get(index, "") + name
                deltas.append(
                    ToolCallDelta(
                        index=index,
                        id=call.get("id") or None,
                        name=name,
                        arguments=_arguments_text(function.get("arguments"), default=""),
                    )
                )
            if finish := choice.get("finish_reason"):
                assembler.finish_reason = str(finish)
        return deltas

    async def aclose(self) -> None:
        await self._http.aclose()


def _usage(raw: Mapping[str, Any] | None) -> Usage:
    if not raw:
        return Usage()
    return Usage(
        input_tokens=int(raw.get("prompt_tokens") or 0),
        output_tokens=int(raw.get("completion_tokens") or 0),
    )


def _arguments_text(raw: Any, default: str = "{}") -> str:
    """Tool call arguments as JSON text; a few servers send an object instead of a string."""
    if raw is None:
        return default
    if isinstance(raw, str):
        return raw
    return orjson.dumps(raw).decode()


def _raise_embedded_error(data: Any) -> None:
    """Raise the error some gateways (OpenRouter) put in a 200 body or a stream chunk."""
    if isinstance(data, dict) and data.get("error") and not data.get("choices"):
        error = data["error"]
        message = error.get("message") if isinstance(error, dict) else error
        code = error.get("code") if isinstance(error, dict) else None
        raise ModelError(
            str(message or error),
            provider=PROVIDER,
            status_code=code if isinstance(code, int) else None,
            retryable=isinstance(code, int) and (code == 429 or code >= 500),
        )
