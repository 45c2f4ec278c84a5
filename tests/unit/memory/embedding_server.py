"""A tiny OpenAI-compatible ``/v1/embeddings`` server on 127.0.0.1 for the embedder tests.

Raw asyncio HTTP/1.1 (one request per connection), so tests can make it fail on purpose. Each
input gets a deterministic vector (its letters counted into ``dimension`` buckets), and the items
come back in reverse order so clients must sort them by ``index``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson


def letter_vector(text: str, dimension: int) -> list[float]:
    out = [0.0] * dimension
    for ch in text.lower():
        if ch.isalpha():
            out[(ord(ch) - ord("a")) % dimension] += 1.0
    return out


@dataclass
class EmbeddingServer:
    dimension: int = 8
    #: Status codes to answer with before behaving (e.g. [500] fails the next request once).
    failures: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        body = orjson.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
        self.headers.append(headers)
        self.requests.append(body)
        payload: dict[str, Any]
        if self.failures:
            status, payload = self.failures.pop(0), {"error": {"message": "embedding backend down"}}
        else:
            inputs = body["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": letter_vector(text, self.dimension)}
                for i, text in enumerate(inputs)
            ]
            status, payload = 200, {"object": "list", "data": data[::-1], "model": body["model"]}
        raw = orjson.dumps(payload)
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(raw)}\r\n"
            "connection: close\r\n\r\n".encode()
            + raw
        )
        await writer.drain()
        writer.close()
