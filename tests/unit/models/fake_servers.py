"""A fake model server on 127.0.0.1: a real TCP socket speaking raw HTTP/1.1, scripted per test.

Raw ``asyncio`` rather than an ASGI app so a test can misbehave the way real networks do: stall
past a timeout, hang up before answering, or drop the connection halfway through a chunked stream.
Each request takes the next scripted reply; an unscripted request gets a 599 so it fails loudly.
"""

from __future__ import annotations

import asyncio
import http
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True, kw_only=True)
class Received:
    """One request as the server saw it."""

    method: str
    path: str
    #: Header names lower-cased.
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


Reply = Callable[[Received, asyncio.StreamWriter], Awaitable[bool]]
"""Writes a response; returns whether the connection stays open for the next request."""


def _head(status: int, headers: Mapping[str, str]) -> bytes:
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Whatever"
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode()


def raw_reply(
    status: int, body: bytes, *, content_type: str = "text/plain", headers: Mapping[str, str] | None = None
) -> Reply:
    async def reply(_request: Received, writer: asyncio.StreamWriter) -> bool:
        head = {"content-type": content_type, "content-length": str(len(body)), **(headers or {})}
        writer.write(_head(status, head) + body)
        await writer.drain()
        return True

    return reply


def json_reply(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
    return raw_reply(status, orjson.dumps(body), content_type="application/json", headers=headers)


def sse_reply(events: Iterable[str], *, drop_after: int | None = None) -> Reply:
    """A chunked ``text/event-stream``; ``drop_after=n`` closes the socket after ``n`` events."""

    async def reply(_request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(_head(200, {"content-type": "text/event-stream", "transfer-encoding": "chunked"}))
        for sent, event in enumerate(events):
            if sent == drop_after:
                await writer.drain()
                writer.close()
                return False
            data = event.encode()
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    return reply


def stall(seconds: float) -> Reply:
    """Answer nothing for ``seconds``, then hang up."""

    async def reply(_request: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(seconds)
        writer.close()
        return False

    return reply


def hang_up() -> Reply:
    """Close the connection without answering."""

    async def reply(_request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.close()
        return False

    return reply


def openai_sse(chunks: Iterable[Any], *, done: bool = True) -> list[str]:
    """Chat-completions stream events: ``data: {chunk}`` lines, then ``data: [DONE]``."""
    events = [f"data: {orjson.dumps(chunk).decode()}\n\n" for chunk in chunks]
    return [*events, "data: [DONE]\n\n"] if done else events


def anthropic_sse(events: Iterable[Mapping[str, Any]]) -> list[str]:
    """Messages stream events: ``event: {type}`` and ``data: {event}``."""
    return [f"event: {e['type']}\ndata: {orjson.dumps(e).decode()}\n\n" for e in events]


class FakeServer:
    """An HTTP/1.1 server on a free loopback port that plays scripted replies in order."""

    def __init__(self) -> None:
        #: Every request received, in order.
        self.requests: list[Received] = []
        #: TCP connections accepted (keep-alive reuses one).
        self.connections = 0
        self._replies: deque[Reply] = deque()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def reply(self, *replies: Reply) -> None:
        """Queue replies for the next requests."""
        self._replies.extend(replies)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self.connections += 1
        try:
            while (request := await self._read(reader)) is not None:
                self.requests.append(request)
                reply = (
                    self._replies.popleft()
                    if self._replies
                    else json_reply({"error": "unscripted"}, status=599)
                )
                if not await reply(request, writer):
                    return
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> Received | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        request_line, *header_lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        method, path, _version = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        return Received(method=method, path=path, headers=headers, body=body)
