"""A fast fake OpenAI-compatible server for benchmarks, run in its own process.

The server must never be the bottleneck, and must not share a GIL with the code it measures, so
it runs as a separate process: a raw ``asyncio.Protocol`` speaking just enough HTTP/1.1
(``Content-Length`` bodies, keep-alive) on uvloop when it is installed. Replies are deterministic
functions of the request: a chat completion answers ``ack <n>`` where ``n`` is the number of
messages it received, or, when the request offers tools and its last message is from the user,
a call of the first tool. It counts what it serves (``GET /stats``, ``POST /reset``), so every
workload can check that the server saw exactly the calls it should have.

    python -m benchmarks.fake_llm [--port 0] [--latency-ms 0]

prints ``PORT <n>`` once it listens, and serves until its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import orjson

_FILLER = "Understood. Here is a short, deterministic answer from the fake model."
_HEAD_END = b"\r\n\r\n"


@dataclass(slots=True)
class Counters:
    """What the server has served since the last reset."""

    #: ``POST /v1/chat/completions`` requests answered with 200.
    completions: int = 0
    #: Of those, how many were answered with a tool call.
    tool_call_replies: int = 0
    #: Sum over requests of the number of messages sent (checks floor and Penguin sent the same).
    messages_total: int = 0
    #: The most messages one request carried.
    max_messages: int = 0
    #: Request bodies, bytes.
    bytes_in: int = 0
    #: Requests answered with an error status (malformed, unknown path, streaming).
    errors: int = 0
    #: TCP connections accepted.
    connections: int = 0


def _response(status: int, body: bytes, *, close: bool = False) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 501: "Not Implemented"}.get(status, "Error")
    connection = b"connection: close\r\n" if close else b""
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
        % (status, reason.encode(), len(body), connection)
    ) + body


def _error(counters: Counters, status: int, message: str) -> bytes:
    counters.errors += 1
    return _response(status, orjson.dumps({"error": {"message": message, "type": "fake_server"}}))


def completion(counters: Counters, raw: bytes) -> bytes:
    """The reply to one chat-completions body (a pure function of it, plus the counters)."""
    try:
        request = orjson.loads(raw)
        messages = request["messages"]
        last = messages[-1]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return _error(counters, 400, "body must be JSON with a non-empty 'messages' list")
    if request.get("stream"):
        return _error(counters, 400, "the benchmark server does not stream")
    n = len(messages)
    counters.completions += 1
    counters.messages_total += n
    counters.max_messages = max(counters.max_messages, n)
    counters.bytes_in += len(raw)
    tools = request.get("tools")
    message: dict[str, Any]
    if tools and last.get("role") == "user":
        counters.tool_call_replies += 1
        call = {
            "id": f"call_{n}",
            "type": "function",
            "function": {"name": tools[0]["function"]["name"], "arguments": f'{{"n": {n}}}'},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    else:
        message = {"role": "assistant", "content": f"ack {n}: {_FILLER}"}
        finish = "stop"
    body = {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": 0,
        "model": request.get("model", "fake"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": 16, "total_tokens": len(raw) // 4 + 16},
    }
    return _response(200, orjson.dumps(body))


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse requests as bytes arrive, answer each in order."""

    def __init__(self, counters: Counters, latency: float) -> None:
        self._counters = counters
        self._latency = latency
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport implements ``asyncio.Transport`` without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._counters.connections += 1

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while (end := buffer.find(_HEAD_END)) >= 0:
            head = bytes(buffer[:end]).lower()
            if b"\r\ntransfer-encoding:" in head:
                self._send(_error(self._counters, 501, "chunked request bodies are not supported"), close=True)
                return
            length = 0
            if (at := head.find(b"\r\ncontent-length:")) >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                return
            body = bytes(buffer[end + 4 : total])
            del buffer[:total]
            self._send(self._route(head, body), close=b"\r\nconnection: close" in head)

    def _route(self, head: bytes, body: bytes) -> bytes:
        request_line = head.split(b"\r\n", 1)[0]
        if request_line.startswith(b"post /v1/chat/completions "):
            return completion(self._counters, body)
        if request_line.startswith(b"get /stats "):
            return _response(200, orjson.dumps(asdict(self._counters)))
        if request_line.startswith(b"post /reset "):
            for name, value in asdict(Counters()).items():
                setattr(self._counters, name, value)
            return _response(200, b"{}")
        return _error(self._counters, 404, f"no route for {request_line.decode(errors='replace')}")

    def _send(self, payload: bytes, *, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        if self._latency > 0:
            asyncio.get_running_loop().call_later(self._latency, self._write, transport, payload, close)
        else:
            self._write(transport, payload, close)

    @staticmethod
    def _write(transport: asyncio.Transport, payload: bytes, close: bool) -> None:
        if transport.is_closing():
            return
        transport.write(payload)
        if close:
            transport.close()


async def serve(port: int, latency_ms: float) -> None:
    """Listen on 127.0.0.1, print ``PORT <n>``, serve until stdin reaches end of file."""
    loop = asyncio.get_running_loop()
    counters = Counters()
    server = await loop.create_server(
        lambda: _Connection(counters, latency_ms / 1000), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"PORT {bound}", flush=True)
    # The parent owns this process through its stdin: when the parent exits or closes the pipe,
    # the server stops, so no orphan outlives a crashed benchmark run.
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()
    await server.wait_closed()


def _run(port: int, latency_ms: float) -> None:
    try:
        import uvloop
    except ImportError:  # plain asyncio is fast enough for the smoke run
        asyncio.run(serve(port, latency_ms))
    else:
        uvloop.run(serve(port, latency_ms))


class FakeLLM:
    """Starts the fake server as a child process and reads its counters.

    Use as a context manager; ``base_url`` is what ``openai_base_url`` should be set to.
    """

    def __init__(self, *, latency_ms: float = 0.0) -> None:
        self._latency_ms = latency_ms
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeLLM:
        command = [sys.executable, "-m", "benchmarks.fake_llm", "--port", "0", "--latency-ms", str(self._latency_ms)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent
        )
        stdout = self._process.stdout
        line = stdout.readline().decode().strip() if stdout is not None else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the fake LLM server did not start (printed {line!r})")
        self.port = int(line.split()[1])
        return self

    def _call(self, method: str, path: str) -> dict[str, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=b"" if method == "POST" else None)
            response = conn.getresponse()
            data: dict[str, Any] = orjson.loads(response.read())
        finally:
            conn.close()
        return data

    def stats(self) -> Counters:
        return Counters(**self._call("GET", "/stats"))

    def reset(self) -> None:
        self._call("POST", "/reset")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each reply")
    args = parser.parse_args()
    _run(args.port, args.latency_ms)


if __name__ == "__main__":
    main()
