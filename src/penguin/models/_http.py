"""HTTP plumbing shared by the wire clients: one pooled session, retries, and error translation.

Every aiohttp failure becomes a ``ModelError`` in exactly one place (``translate_errors``); every
non-2xx response becomes one in another (``status_error``). Retry policy: 429, 5xx, timeouts and
connection failures are retried ``retries`` times after the first attempt, with exponential
backoff and jitter, honouring ``Retry-After`` up to the cap. A stream is retried only until its
response headers arrive; once the body is flowing, a failure is raised, never replayed, because
the caller may already have shown the deltas.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson

from penguin.errors import ModelError
from penguin.http_session import HttpSession
from penguin.sse import body_lines, sse_events

#: Parameters that steer Penguin's own machinery (scripted models, context assembly); never sent.
PENGUIN_ONLY_PARAMETERS = frozenset({"delay", "chunk", "tool", "arguments", "context_tokens"})

_PREVIEW_CHARS = 200

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often and how long to wait between attempts."""

    #: Attempts after the first one.
    retries: int
    #: Seconds before the first retry; doubles each retry.
    backoff: float = 0.25
    #: Longest wait in seconds, also the most of a ``Retry-After`` that is honoured.
    cap: float = 8.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        ceiling = min(self.cap, self.backoff * 2.0**retry)
        # "Equal jitter": at least half the exponential step, so retries never bunch up at zero.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@contextmanager
def translate_errors(provider: str) -> Iterator[None]:
    """Turn aiohttp failures into ``ModelError``; transient ones are marked retryable."""
    try:
        yield
    except TimeoutError as exc:  # aiohttp's ServerTimeoutError is one too
        detail = f"request timed out ({type(exc).__name__})"
        raise ModelError(detail, provider=provider, retryable=True) from exc
    except aiohttp.InvalidURL as exc:
        raise ModelError(f"cannot send the request: invalid URL {exc}", provider=provider) from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        detail = f"connection failed ({type(exc).__name__}): {exc or 'no detail'}"
        raise ModelError(detail, provider=provider, retryable=True) from exc
    except aiohttp.ClientError as exc:
        raise ModelError(f"request failed ({type(exc).__name__}): {exc}", provider=provider) from exc


@contextmanager
def malformed(provider: str, status_code: int | None) -> Iterator[None]:
    """Turn a response of the wrong shape (missing keys, wrong types) into ``ModelError``."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        detail = f"unexpected response shape ({type(exc).__name__}: {exc})"
        raise ModelError(detail, provider=provider, status_code=status_code) from exc


def decode_json(provider: str, status_code: int | None, raw: bytes | str) -> Any:
    """Parse a JSON body or raise ``ModelError`` quoting the start of it."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        raise ModelError(
            f"response is not JSON: {text[:_PREVIEW_CHARS]!r}", provider=provider, status_code=status_code
        ) from None


def error_message(raw: bytes) -> str:
    """The provider's own error message from an error body, or the start of the body."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        # OpenAI and Anthropic: {"error": {"message"}}; Ollama: {"error": "..."};
        # vLLM: {"message"}; FastAPI-based gateways: {"detail"}.
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for candidate in (error, body.get("message"), body.get("detail")):
            if isinstance(candidate, str) and candidate:
                return candidate
    text = raw.decode("utf-8", "replace").strip()
    return text[:_PREVIEW_CHARS] or "empty response body"


def status_error(provider: str, status: int, body: bytes) -> ModelError:
    """The ``ModelError`` for a non-2xx response with this body."""
    return ModelError(
        error_message(body),
        provider=provider,
        status_code=status,
        retryable=status == 429 or status >= 500,
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After`` seconds or date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def missing_key_detail(
    base_url: str, api_key: str | None, *, public_host: str, env_prefix: str
) -> str | None:
    """Why requests cannot work (no key for the provider's public API), or ``None``.

    A custom base URL (vLLM, Ollama, llama.cpp, a gateway) may need no key, so only the public
    host is checked.
    """
    if api_key:
        return None
    try:
        host = urlsplit(base_url).hostname
    except ValueError:
        return None
    if host != public_host:
        return None
    return (
        f"no API key for {public_host}: set the {env_prefix}_API_KEY environment variable, or set "
        f"{env_prefix}_BASE_URL to a compatible server that needs no key"
    )


class WireClient:
    """A model provider's HTTP endpoint (``HttpSession``) with Penguin's retry and error rules."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        policy: RetryPolicy,
        key_error: str | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.provider = provider
        self.policy = policy
        #: Told (with the provider name) before each retry: the retry metric.
        self._on_retry = on_retry
        self._key_error = key_error
        self._http = HttpSession(
            base_url=base_url, headers={**headers, "content-type": "application/json"}, timeout=timeout
        )

    def encode(self, body: Mapping[str, Any]) -> bytes:
        try:
            return orjson.dumps(body)
        except TypeError as exc:  # orjson.JSONEncodeError
            raise ModelError(f"request is not JSON-serializable: {exc}", provider=self.provider) from exc

    async def _send(self, path: str, content: bytes) -> aiohttp.ClientResponse:
        """Send with retries; return a 2xx response whose body is not read yet."""
        if self._key_error is not None:
            raise ModelError(self._key_error, provider=self.provider)
        http = self._http
        try:
            url = http.url(path)
        except ValueError as exc:
            raise ModelError(f"cannot send the request: invalid URL ({exc})", provider=self.provider) from exc
        attempt = 0
        while True:
            wait: float | None = None
            try:
                with translate_errors(self.provider):
                    response = await http.session().post(url, data=content, proxy=http.proxy)
                    if response.status < 300:
                        return response
                    body = await response.read()
                    response.release()
            except ModelError as exc:
                error = exc
            else:
                error = status_error(self.provider, response.status, body)
                wait = retry_after(response.headers)
            if not error.retryable or attempt >= self.policy.retries:
                raise error
            if self._on_retry is not None:
                self._on_retry(self.provider)
            await asyncio.sleep(self.policy.delay(attempt, wait))
            attempt += 1
    async def post(self, path: str, body: Mapping[str, Any], parse: Callable[[Any], T]) -> T:
        """POST a JSON body; return ``parse`` applied to the decoded JSON answer.

        ``parse`` may index the answer freely: a wrong shape becomes ``ModelError``.
        """
        content = self.encode(body)
        response = await self._send(path, content)
        try:
            with translate_errors(self.provider):
                raw = await response.read()
        finally:
            response.release()
        data = decode_json(self.provider, response.status, raw)
        with malformed(self.provider, response.status):
            return parse(data)

    async def post_stream(self, path: str, body: Mapping[str, Any]) -> AsyncGenerator[tuple[str, str], None]:
        """POST a JSON body; yield the answer's server-sent events as ``(event, data)``.

        Raises:
            ModelError: as ``post``; also when the body is JSON (a gateway's error, or a server
                that ignored ``stream``) or holds no event at all.
        """
        content = self.encode(body)
        response = await self._send(path, content)
        status = response.status
        try:
            with translate_errors(self.provider):
                if "json" in response.headers.get("content-type", ""):
                    detail = error_message(await response.read())
                    raise ModelError(
                        f"expected an event stream, got JSON: {detail}",
                        provider=self.provider,
                        status_code=status,
                    )
                empty = True
                async with aclosing(sse_events(body_lines(response.content.iter_any()))) as events:
                    async for item in events:
                        empty = False
                        yield item
            if empty:
                raise ModelError(
                    "the event stream ended without any event", provider=self.provider, status_code=status
                )
        finally:
            # A stream left before its end cannot be reused: close the connection, don't pool it.
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    async def aclose(self) -> None:
        await self._http.aclose()
