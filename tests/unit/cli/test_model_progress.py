"""`penguin chat` and `penguin demo` show how the local model is prepared: a bar while the weights
are assembled, a spinner while they load, and nothing once the reply starts.

A small GGUF and a fake loader stand in for the real weights and llama.cpp; the core, the
``PenguinAgent`` and the rich console are real.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from penguin import PenguinAgent, PenguinCore
from penguin.cli.progress import ModelProgressDisplay, prepare_core_model, prepare_model
from penguin.config import Settings
from penguin.errors import ModelError
from penguin.models.local import ChatServer, LocalModel
from penguin.models.progress import Assembling, Loading, ModelEvent, Ready

TARGET = Path("/cache/penguin/models/qwen.gguf")
SIZE = 491_400_064


class FakeLoader:
    def __call__(self, path: Path, settings: Settings) -> ChatServer:
        return self

    def handle_chat_completions(self, request: dict[str, Any], callback: Any) -> None:
        callback({"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]})


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 60)
    return path


def preparation() -> list[ModelEvent]:
    return [
        Assembling(path=TARGET, done_bytes=0, total_bytes=SIZE),
        Assembling(path=TARGET, done_bytes=SIZE // 2, total_bytes=SIZE),
        Assembling(path=TARGET, done_bytes=SIZE, total_bytes=SIZE),
        Loading(model="local:default", path=TARGET),
        Ready(model="local:default", path=TARGET, seconds=2.14),
    ]


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_a_terminal_shows_a_bar_then_a_spinner_and_clears_both() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)

    with ModelProgressDisplay(console) as display:
        for event in preparation():
            display(event)
        with console.status("the reply streams here"):  # rich allows one live display: none is left
            pass

    text = plain(out.getvalue())
    assert "assembling the bundled model" in text
    assert "491.4 MB" in text
    assert "assembled the bundled model into /cache/penguin/models (491 MB, once per machine)\n" in text
    assert "loading the local model…" in text


def test_events_after_close_are_ignored() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None)
    display = ModelProgressDisplay(console)
    display(Loading(model="local:default", path=TARGET))
    display.close()  # e.g. Ctrl-C while the worker thread still loads

    display(Assembling(path=TARGET, done_bytes=0, total_bytes=SIZE))
    with console.status("nothing else is live"):
        pass
    assert "assembling" not in out.getvalue()


def test_a_pipe_gets_one_plain_line_per_step() -> None:
    out = io.StringIO()

    with ModelProgressDisplay(Console(file=out, width=40)) as display:
        for event in preparation():
            display(event)

    assert out.getvalue().splitlines() == [
        f"assembling the bundled model into {TARGET} (491 MB, once per machine)",
        f"loading the local model from {TARGET}",
        "local model ready in 2.1 s",
    ]


def test_chat_prepares_the_chosen_model_up_front(tmp_path: Path, gguf: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, width=40)  # narrower than a line: plain lines are never wrapped
    with PenguinAgent(data_dir=tmp_path / "data", model="scripted:echo") as penguin:
        penguin.core.models.register("local:tiny", LocalModel(str(gguf), penguin.core.settings, loader=FakeLoader()))

        assert prepare_model(penguin, console, model="local:tiny") == "local:tiny"
        assert prepare_model(penguin, console, model="local:tiny") == "local:tiny"  # loaded already: silent
        assert prepare_model(penguin, console) == "scripted:echo"  # nothing to prepare, nothing shown
        assert penguin.chat("hello", model="local:tiny").text == "hi"

    loading, ready = out.getvalue().splitlines()
    assert loading == f"loading the local model from {gguf}"
    assert re.fullmatch(r"local model ready in \d+\.\d s", ready)


async def test_the_core_prepares_an_agents_own_model(tmp_path: Path, gguf: Path) -> None:
    events: list[ModelEvent] = []
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        core.models.register("local:tiny", LocalModel(str(gguf), core.settings, loader=FakeLoader()))
        await core.create_agent("coder", model="local:tiny")

        assert await core.prepare_model(agent_id="coder", progress=events.append) == "local:tiny"
        assert await core.prepare_model(agent_id="someone-new") == "scripted:echo"  # the default model
        assert await prepare_core_model(core, Console(file=io.StringIO()), model="local:tiny") == "local:tiny"

    assert [e.kind for e in events] == ["loading", "ready"]


async def test_a_first_call_reports_to_the_observer_the_core_was_built_with(tmp_path: Path, gguf: Path) -> None:
    """Nobody prepared the model, so the turn loads it, and the core's own observer hears about it.

    The real llama.cpp loader refuses this 64-byte "GGUF", which ends the story after ``Loading``.
    """
    events: list[ModelEvent] = []
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", model_progress=events.append) as core:
        with pytest.raises(ModelError, match="could not load"):
            await core.chat("hello", model=f"local:{gguf}")

    assert events == [Loading(model=f"local:{gguf}", path=gguf)]
