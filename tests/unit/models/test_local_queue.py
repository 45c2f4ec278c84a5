"""The local model's scheduling: one decode at a time, agents served round-robin, cancellation
that really stops the decode, and streaming bridged from the decode thread to the event loop.

A scripted ``ChatServer`` stands in for llama.cpp; it is driven from the same worker thread and
through the same callback protocol as ``xllamacpp.Server``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from penguin.config import Settings
from penguin.errors import ModelError
from penguin.models._fairqueue import FairQueue
from penguin.models.base import ModelRequest, ModelResponse, StreamDone, TextDelta, ToolCallDelta, ToolSchema, Usage
from penguin.models.local import ChatServer, LocalModel

READ = ToolSchema(
    name="read_file",
    description="Read a text file.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
)


def chunk(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class ScriptedServer:
    """Streams canned pieces; with a ``gate``, each piece waits for one ``gate.release()``."""

    def __init__(self, pieces: list[str] | None = None, *, endless: bool = False) -> None:
        self.pieces = pieces or ["Hello", ", ", "world"]
        self.endless = endless
        #: Fixed answers by the request's last user message (never endless), checked first.
        self.replies: dict[str, list[str]] = {}
        self.gate: threading.Semaphore | None = None
        self.bodies: list[dict[str, Any]] = []
        self.started = threading.Event()
        self.stopped = threading.Event()
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def _pieces(self, request: dict[str, Any]) -> Iterator[str]:
        fixed = self.replies.get(last_user(request))
        if fixed is not None:
            yield from fixed
            return
        while True:
            yield from self.pieces
            if not self.endless:
                return

    def handle_chat_completions(self, request: dict[str, Any], callback: Any) -> None:
        with self._lock:
            self.bodies.append(request)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.set()
        try:
            callback({"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}}]})
            produced = 0
            for piece in self._pieces(request):
                if self.gate is not None:
                    self.gate.acquire(timeout=5)
                produced += 1
                if callback(chunk(piece)):
                    self.stopped.set()
                    return
            callback(chunk(finish="stop"))
            callback({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": produced}})
        finally:
            with self._lock:
                self.active -= 1


def make_model(tmp_path: Path, server: ScriptedServer) -> LocalModel:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)

    def loader(path: Path, settings: Settings) -> ChatServer:
        return server

    return LocalModel(str(gguf), Settings(data_dir=tmp_path), loader=loader)


def ask(text: str, agent: str = "a", **parameters: Any) -> ModelRequest:
    return ModelRequest(messages=[{"role": "user", "content": text}], agent_id=agent, parameters=parameters)


def last_user(body: dict[str, Any]) -> str:
    return str(body["messages"][-1]["content"])


async def test_complete_returns_text_and_usage(tmp_path: Path) -> None:
    model = make_model(tmp_path, ScriptedServer())

    response = await model.complete(ask("hi", temperature=0.5, delay=3))

    assert response == ModelResponse(
        text="Hello, world", usage=Usage(input_tokens=11, output_tokens=3), finish_reason="stop", model=model.name
    )


async def test_parameters_pass_through_and_others_are_dropped(tmp_path: Path) -> None:
    server = ScriptedServer()
    model = make_model(tmp_path, server)

    await model.complete(ask("hi", temperature=0.5, max_tokens=7, delay=3))

    body = server.bodies[0]
    assert (body["temperature"], body["max_tokens"], "delay" in body) == (0.5, 7, False)
    assert body["stream"] is True


async def test_stream_yields_deltas_as_decoded_then_done(tmp_path: Path) -> None:
    model = make_model(tmp_path, ScriptedServer())

    events = [event async for event in model.stream(ask("hi"))]

    assert events[:-1] == [TextDelta(text="Hello"), TextDelta(text=", "), TextDelta(text="world")]
    assert events[-1] == StreamDone(response=await model.complete(ask("hi")))


async def test_stream_delivers_each_delta_while_the_decode_runs(tmp_path: Path) -> None:
    server = ScriptedServer()
    server.gate = threading.Semaphore(0)
    model = make_model(tmp_path, server)
    stream = model.stream(ask("hi"))

    server.gate.release()  # let exactly one piece through; the decode then waits for the next
    assert await anext(stream) == TextDelta(text="Hello")
    assert server.active == 1

    server.gate.release(2)
    rest = [event async for event in stream]
    assert rest[:-1] == [TextDelta(text=", "), TextDelta(text="world")]
    assert isinstance(rest[-1], StreamDone)


async def test_constrained_tool_call_becomes_a_tool_call(tmp_path: Path) -> None:
    reply = json.dumps({"name": "read_file", "arguments": {"path": "README.md"}})
    server = ScriptedServer([reply[:10], reply[10:]])
    model = make_model(tmp_path, server)

    events = [e async for e in model.stream(ModelRequest(messages=[{"role": "user", "content": "x"}], tools=[READ]))]

    done = events[-1]
    assert isinstance(done, StreamDone)
    (call,) = done.response.tool_calls
    assert (call.name, json.loads(call.arguments), done.response.finish_reason) == (
        "read_file",
        {"path": "README.md"},
        "tool_calls",
    )
    assert events[:-1] == [ToolCallDelta(index=0, id=call.id, name="read_file", arguments=call.arguments)]
    body = server.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["temperature"] == 0.0


async def test_constrained_answer_streams_only_the_answer_text(tmp_path: Path) -> None:
    reply = json.dumps({"name": "final_answer", "arguments": {"answer": "Paris is the capital."}})
    model = make_model(tmp_path, ScriptedServer([reply[i : i + 5] for i in range(0, len(reply), 5)]))

    events = [e async for e in model.stream(ModelRequest(messages=[{"role": "user", "content": "x"}], tools=[READ]))]

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Paris is the capital."
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert (done.response.text, done.response.tool_calls) == ("Paris is the capital.", ())


async def test_repeating_an_answered_call_is_turned_into_an_answer(tmp_path: Path) -> None:
    call = json.dumps({"name": "read_file", "arguments": {"path": "README.md"}})
    answer = json.dumps({"name": "final_answer", "arguments": {"answer": "It is about Penguin."}})
    server = ScriptedServer([call])
    model = make_model(tmp_path, server)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "What's in README.md?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path":"README.md"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "# Penguin"},
    ]
    original = server.handle_chat_completions

    def second_time_answer(request: dict[str, Any], callback: Any) -> None:
        server.pieces = [answer] if server.bodies else [call]
        original(request, callback)

    server.handle_chat_completions = second_time_answer  # type: ignore[method-assign]

    response = await model.complete(ModelRequest(messages=messages, tools=[READ]))

    assert (response.text, response.tool_calls) == ("It is about Penguin.", ())
    assert "read_file" not in json.dumps(server.bodies[1]["response_format"])
    assert response.usage == Usage(input_tokens=22, output_tokens=2)


async def test_one_decode_at_a_time_and_agents_take_turns(tmp_path: Path) -> None:
    server = ScriptedServer(["x"])
    server.gate = threading.Semaphore(0)
    model = make_model(tmp_path, server)
    first = asyncio.create_task(model.complete(ask("A1", "alice")))
    assert await asyncio.to_thread(server.started.wait, 5)  # A1 is decoding, held at the gate
    later = [
        asyncio.create_task(model.complete(ask(text, agent)))
        for text, agent in [("A2", "alice"), ("A3", "alice"), ("B1", "bob"), ("C1", "carol")]
    ]
    await asyncio.sleep(0)  # each task runs up to its place in the queue, in creation order
    assert model.queued == 4

    server.gate.release(5)
    await asyncio.gather(first, *later)

    assert [last_user(b) for b in server.bodies] == ["A1", "B1", "C1", "A2", "A3"]
    assert server.max_active == 1


async def test_cancelling_stops_the_decode_and_the_queue_moves_on(tmp_path: Path) -> None:
    server = ScriptedServer(["tick "], endless=True)
    # Set before the queue moves on: the worker may start "next" the moment "go on forever" stops.
    server.replies["next"] = ["done"]
    model = make_model(tmp_path, server)
    endless = asyncio.create_task(model.complete(ask("go on forever", "alice")))
    assert await asyncio.to_thread(server.started.wait, 5)
    waiting = asyncio.create_task(model.complete(ask("next", "bob")))
    await asyncio.sleep(0)
    assert model.queued == 1

    endless.cancel()
    with pytest.raises(asyncio.CancelledError):
        await endless

    assert await asyncio.to_thread(server.stopped.wait, 5)
    assert (await waiting).text == "done"


async def test_abandoning_a_stream_stops_the_decode(tmp_path: Path) -> None:
    server = ScriptedServer(["tick "], endless=True)
    model = make_model(tmp_path, server)

    stream = model.stream(ask("go"))
    assert await anext(stream) == TextDelta(text="tick ")
    await stream.aclose()

    assert await asyncio.to_thread(server.stopped.wait, 5)


async def test_a_waiter_cancelled_in_the_queue_never_runs(tmp_path: Path) -> None:
    server = ScriptedServer(["x"])
    server.gate = threading.Semaphore(0)
    model = make_model(tmp_path, server)
    first = asyncio.create_task(model.complete(ask("first", "alice")))
    assert await asyncio.to_thread(server.started.wait, 5)
    doomed = asyncio.create_task(model.complete(ask("doomed", "bob")))
    kept = asyncio.create_task(model.complete(ask("kept", "carol")))
    await asyncio.sleep(0)
    assert model.queued == 2

    doomed.cancel()
    server.gate.release(3)
    await asyncio.gather(first, kept)

    assert [last_user(b) for b in server.bodies] == ["first", "kept"]
    assert doomed.cancelled()


async def test_errors_from_llama_cpp_become_model_errors(tmp_path: Path) -> None:
    class Overflowing(ScriptedServer):
        def handle_chat_completions(self, request: dict[str, Any], callback: Any) -> None:
            if last_user(request) != "long":
                return super().handle_chat_completions(request, callback)
            error = {"code": 400, "message": "request (9000 tokens) exceeds the available context size"}
            callback({"error": {**error, "type": "exceed_context_size_error"}})
            return None

    model = make_model(tmp_path, Overflowing())

    with pytest.raises(ModelError, match=r"exceeds the available context size \(set PENGUIN_LOCAL_CONTEXT above 4096"):
        await model.complete(ask("long"))
    assert (await model.complete(ask("short"))).text == "Hello, world"


async def test_closed_model_refuses_calls(tmp_path: Path) -> None:
    model = make_model(tmp_path, ScriptedServer())
    await model.complete(ask("hi"))

    await model.aclose()

    with pytest.raises(ModelError, match="closed"):
        await model.complete(ask("hi"))


async def test_fair_queue_alone_round_robins() -> None:
    queue = FairQueue()
    order: list[str] = []

    async def job(agent: str, label: str) -> None:
        await queue.acquire(agent)
        order.append(label)
        await asyncio.sleep(0)
        queue.release()

    await queue.acquire("x")
    tasks = [asyncio.create_task(job(a, f"{a}{i}")) for a, i in [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1)]]
    await asyncio.sleep(0)
    assert queue.waiting == 5
    queue.release()
    await asyncio.gather(*tasks)

    assert order == ["a1", "b1", "c1", "a2", "a3"]
