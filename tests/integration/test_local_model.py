"""The embedded model, for real: bundled weights assembled, llama.cpp loaded, a chat and a tool call.

CI installs the ``[local]`` extra, so these tests always run there; they take a few seconds each on
one CPU thread. The weights are assembled once per machine, into the machine's model cache (the one
``penguin chat`` uses), and reused by every later run; the data dir is temporary as usual.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from penguin.config import Settings
from penguin.models.base import ModelRequest, StreamDone, TextDelta, ToolSchema
from penguin.models.local import LocalModel

pytestmark = pytest.mark.local_model

SYSTEM = "You are Penguin, a helpful software engineering agent working in the user's project workspace."
READ = ToolSchema(
    name="read_file",
    description="Read a text file from the workspace and return its contents.",
    parameters={
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Path relative to the workspace root."}},
        "required": ["path"],
    },
)
LIST = ToolSchema(
    name="list_dir",
    description="List the files and directories in a workspace directory.",
    parameters={
        "type": "object",
        "properties": {"path": {"type": "string", "description": "Directory path ('.' for the root)."}},
        "required": ["path"],
    },
)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, machine_models_dir: Path) -> Iterator[LocalModel]:
    data_dir = tmp_path_factory.mktemp("penguin-data")
    local = LocalModel("default", Settings(data_dir=data_dir, models_dir=machine_models_dir))
    yield local
    asyncio.run(local.aclose())


async def test_bundled_weights_assemble_and_a_chat_completes(model: LocalModel, machine_models_dir: Path) -> None:
    response = await model.complete(
        ModelRequest(
            messages=[
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": "Say hello in one short sentence."},
            ],
            parameters={"temperature": 0, "max_tokens": 32},
            agent_id="chat",
        )
    )

    assert response.text.strip()
    assert response.tool_calls == ()
    assert response.finish_reason in ("stop", "length")
    assert response.usage.input_tokens > 10
    assert 0 < response.usage.output_tokens <= 32
    assert response.model == "local:default"
    path = model.model_path()
    assert path.parent == machine_models_dir
    assert path.name == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert path.stat().st_size == 491_400_064
    assert path.with_name(path.name + ".sha256").is_file()


async def test_stream_yields_text_then_done(model: LocalModel) -> None:
    request = ModelRequest(
        messages=[{"role": "user", "content": "Count from one to five in words."}],
        parameters={"temperature": 0, "max_tokens": 24},
        agent_id="stream",
    )

    events = [event async for event in model.stream(request)]

    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    done = events[-1]
    assert isinstance(done, StreamDone)
    assert len(deltas) > 1
    assert "".join(deltas) == done.response.text
    assert done.response.usage.output_tokens > 0


async def test_a_tool_call_then_an_answer_from_its_result(model: LocalModel) -> None:
    messages: list[dict[str, object]] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What's in README.md?"},
    ]

    first = await model.complete(ModelRequest(messages=messages, tools=[READ, LIST], agent_id="tools"))

    assert first.finish_reason == "tool_calls"
    (call,) = first.tool_calls
    assert call.name == "read_file"
    assert json.loads(call.arguments) == {"path": "README.md"}

    messages += [
        {"role": "assistant", "content": "", "tool_calls": [call.to_wire()]},
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "# Penguin\nPenguin is a multi-agent orchestration runtime.",
        },
    ]
    second = await model.complete(ModelRequest(messages=messages, tools=[READ, LIST], agent_id="tools"))

    assert second.tool_calls == ()
    assert "multi-agent" in second.text.lower() or "penguin" in second.text.lower()
