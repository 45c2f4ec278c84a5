"""Model preparation on the terminal: a progress bar while the bundled weights are assembled and a
spinner while llama.cpp loads them, both cleared before the first reply streams.

``penguin chat`` and ``penguin demo`` prepare the model up front through these helpers instead of
letting the first turn load it silently. Hosted models have nothing to prepare, so nothing is shown
for them. On a console that is not a terminal (a pipe, a CI log) each step is one plain line.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import TYPE_CHECKING, assert_never

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.status import Status

from penguin.models.progress import Assembling, Loading, ModelEvent, Ready, Waiting, megabytes

if TYPE_CHECKING:
    from penguin.agent import PenguinAgent
    from penguin.core import PenguinCore


class ModelProgressDisplay:
    """A ``ModelProgress`` observer that draws on a rich console.

    Use it as a context manager around one preparation: leaving the block clears whatever is still
    on screen, and events that arrive later (say, after Ctrl-C) are ignored. Events come from the
    model's worker thread; a lock keeps them in order with ``close``.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._status: Status | None = None
        self._closed = False

    def __call__(self, event: ModelEvent) -> None:
        with self._lock:
            if self._closed:
                return
            if self._console.is_terminal:
                self._draw(event)
            else:
                self._write(event)

    def close(self) -> None:
        """Clear the bar or spinner, if any; ignore later events."""
        with self._lock:
            self._closed = True
            self._clear()

    def __enter__(self) -> ModelProgressDisplay:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Terminal ---------------------------------------------------------------------------------

    def _draw(self, event: ModelEvent) -> None:
        match event:
            case Waiting(path=path):
                self._spin(f"waiting for another Penguin process to assemble {path.name}…")
            case Assembling():
                self._advance(event)
            case Loading():
                self._spin("loading the local model…")
            case Ready():
                self._clear()
            case _:
                assert_never(event)

    def _advance(self, event: Assembling) -> None:
        if self._bar is None or self._task is None:
            self._clear()
            self._bar = Progress(
                TextColumn("[bold]assembling the bundled model[/]"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self._console,
                transient=True,
            )
            self._task = self._bar.add_task("assemble", total=event.total_bytes)
            self._bar.start()
        self._bar.update(self._task, completed=event.done_bytes)
        if event.finished:
            self._clear()
            self._console.print(
                f"[dim]assembled the bundled model into {event.path.parent} "
                f"({megabytes(event.total_bytes)}, once per machine)[/]",
                highlight=False,
                soft_wrap=True,
            )

    def _spin(self, text: str) -> None:
        self._clear()
        self._status = Status(text, console=self._console)
        self._status.start()

    def _clear(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None
        if self._status is not None:
            self._status.stop()
            self._status = None

    # Pipe or log ------------------------------------------------------------------------------

    def _write(self, event: ModelEvent) -> None:
        match event:
            case Waiting(path=path):
                line = f"waiting for another Penguin process to assemble {path}"
            case Assembling(path=path, done_bytes=0, total_bytes=total):
                line = f"assembling the bundled model into {path} ({megabytes(total)}, once per machine)"
            case Assembling():
                return
            case Loading(path=path):
                line = f"loading the local model from {path}"
            case Ready(seconds=seconds):
                line = f"local model ready in {seconds:.1f} s"
            case _:
                assert_never(event)
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)  # a log line: never wrapped


def prepare_model(
    penguin: PenguinAgent, console: Console, *, model: str | None = None, agent_id: str | None = None
) -> str:
    """Prepare the model a chat would use (``model``, else the agent's, else the default), showing
    progress on ``console``; return its ``provider:model`` string.

    Raises:
        PenguinError: as ``PenguinCore.prepare_model``.
    """
    with ModelProgressDisplay(console) as display:
        return penguin.prepare_model(model, agent_id=agent_id, progress=display)


async def prepare_core_model(core: PenguinCore, console: Console, *, model: str | None = None) -> str:
    """``prepare_model`` for a core running on the caller's event loop (``penguin demo``)."""
    with ModelProgressDisplay(console) as display:
        return await core.prepare_model(model, progress=display)


__all__ = ["ModelProgressDisplay", "prepare_core_model", "prepare_model"]
