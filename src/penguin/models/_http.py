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
import codecs
import email.utils
import random
import re
import time
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import orjson
import yarl

from penguin.errors import ModelError

#: Parameters that steer Penguin's own machinery (scripted models, context assembly); never sent.
PENGUIN_ONLY_PARAMETERS = frozenset({"delay", "chunk", "tool", "arguments", "context_tokens"})

_PREVIEW_CHARS = 200
_LINE_END = re.compile(r"\r\n|\r|\n")
#: Connections one wire client keeps to its server (aiohttp queues requests beyond them).
MAX_CONNECTIONS = 256

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


async def sse_events(lines: AsyncIterator[str]) -> AsyncGenerator[tuple[str, str], None]:
    """Server-sent events as ``(event, data)`` pairs from a body's lines."""
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        # Comments (":keep-alive"), ids and retry hints carry nothing we use.
    if data:
        yield event, "\n".join(data)




class WireClient:
    """One keep-alive ``aiohttp`` session per event loop, with Penguin's retry and error rules.

    aiohttp rather than httpx on this hot path: per request it costs a third of httpx's CPU
    sequentially, and a tenth with 50 requests in flight, where httpcore's pool does work in
    proportion to the requests waiting in it (encode/httpx#3215). See ``docs/benchmarks.md``.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        policy: RetryPolicy,
        key_error: str | None = None,
    ) -> None:
        self.provider = provider
        self.policy = policy
        self._key_error = key_error
        self._base_url = base_url.rstrip("/")
        self._headers = {**headers, "content-type": "application/json"}
        # ``timeout`` bounds each phase (pool wait + connect, each read), like httpx's timeout,
        # not the whole answer: a long stream that keeps sending is not cut off.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Absolute URL by path (paths are a handful of fixed endpoints).
        self._urls: dict[str, yarl.URL] = {}
        self._proxy = env_proxy(self._base_url)

    def _current_session(self) -> aiohttp.ClientSession:
        """The session of the running loop, created on first use (a session cannot change loops)."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
            # trust_env would look up the proxy and ~/.netrc in a thread on every request: the
            # proxy is read from the environment once instead (``env_proxy``).
            session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout, connector=connector)
            self._session, self._loop = session, loop
        return session

    def _url(self, path: str) -> yarl.URL:
        url = self._urls.get(path)
        if url is None:
            try:
                url = yarl.URL(self._base_url + "/" + path.lstrip("/"))
            except ValueError as exc:
                raise ModelError(f"cannot send the request: invalid URL ({exc})", provider=self.provider) from exc
            self._urls[path] = url
        return url

    def encode(self, body: Mapping[str, Any]) -> bytes:
        try:
            return orjson.dumps(body)
        except TypeError as exc:  # orjson.JSONEncodeError
            raise ModelError(f"request is not JSON-serializable: {exc}", provider=self.provider) from exc

    async def _send(self, path: str, content: bytes) -> aiohttp.ClientResponse:
        """Send with retries; return a 2xx response whose body is not read yet."""
        if self._key_error is not None:
            raise ModelError(self._key_error, provider=self.provider)
        attempt = 0
        while True:
            wait: float | None = None
            try:
                with translate_errors(self.provider):
                    response = await self._current_session().post(self._url(path), data=content, proxy=self._proxy)
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
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()


def env_proxy(base_url: str) -> str | None:
    """The proxy that ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` name for ``base_url``, if any."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return None
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


async def body_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """Decoded lines of a body (``\\n``, ``\\r\\n`` or ``\\r`` endings), however it is chunked."""
    pending = ""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    async for chunk in chunks:
        pending += decoder.decode(chunk)
        # A trailing CR may be the first half of a CRLF: keep it for the next chunk.
        carry = "\r" if pending.endswith("\r") else ""
        lines = _LINE_END.split(pending[: len(pending) - len(carry)])
        pending = lines.pop() + carry
        for line in lines:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        lines = _LINE_END.split(pending)
        if not lines[-1]:
            lines.pop()
        for line in lines:
            yield line
