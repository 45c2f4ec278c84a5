"""``WireClient`` spreads concurrent calls over several connection pools and keeps a lone caller on one."""

from __future__ import annotations

import asyncio

from fake_servers import FakeServer, json_reply
from test_openai import HELLO, completion, make_model

from penguin.models.base import ModelRequest


async def test_concurrent_calls_each_get_an_answer_and_sequential_calls_reuse_a_connection(
    server: FakeServer,
) -> None:
    server.reply(*(json_reply(completion(f"r{i}")) for i in range(14)))
    model = make_model(server)
    try:
        answers = await asyncio.gather(*(model.complete(ModelRequest(messages=HELLO)) for _ in range(10)))
        assert sorted(a.text for a in answers) == sorted(f"r{i}" for i in range(10))
        opened = server.connections
        assert opened > 1  # ten at once cannot share one HTTP/1.1 connection
        for _ in range(4):
            await model.complete(ModelRequest(messages=HELLO))
        assert server.connections == opened
    finally:
        await model.aclose()
