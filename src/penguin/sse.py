"""Server-sent events: a body's lines from its chunks, and ``(event, data)`` pairs from lines.

Shared by the model wire clients (an OpenAI or Anthropic stream) and ``PenguinClient`` (the chat
route's stream). Lines end in LF, CRLF or a lone CR, as the SSE format allows, and may be split
anywhere across chunks, including inside a UTF-8 character.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, AsyncIterator

_LINE_END = re.compile(r"\r\n|\r|\n")


async def body_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """Decoded lines of a body, however it is chunked (line endings removed)."""
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


__all__ = ["body_lines", "sse_events"]
