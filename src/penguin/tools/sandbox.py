"""``Workspace``: the one directory tree that the file tools may touch, and how to touch it safely.

Every path a model gives is untrusted. It is checked lexically first (no NUL byte, not absolute,
no ``..`` component, no ``~``, bounded length), then resolved with ``realpath`` and refused unless
it stays under the root, so a symlink may point anywhere *inside* the workspace but never out.

Checking a path and then opening it is racy: another process (or agent shell) can swap a checked
file or directory for a symlink in between. So the resolved path is not opened by name. It is
walked from the root one component at a time with ``O_NOFOLLOW | O_DIRECTORY`` relative to the
parent's descriptor, and the leaf is opened with ``O_NOFOLLOW`` relative to its directory's
descriptor; a component swapped for a symlink fails that walk instead of being followed. After the
open, the descriptor's real path (``/proc/self/fd``) is checked against the root once more, and
``fstat`` must say it is a regular file with a single link (FIFOs, sockets, devices and hard links
that may alias files outside are refused). Writes go to a temporary file in the same directory
and are renamed over the target, so a reader never sees half a file.

All methods here block; the tools run them in worker threads so the event loop never waits on
the disk. Refusals raise ``ToolDenied`` with ``reason="sandbox"``; ordinary failures (missing
file, too large, not text) raise ``ToolError``. Both say what to do instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from penguin.config import Settings
from penguin.errors import ToolDenied, ToolError

#: Longest path (in characters) a tool may name.
DEFAULT_MAX_PATH_CHARS = 1024
#: Longest single path component, in bytes (the usual ``NAME_MAX``).
NAME_MAX_BYTES = 255
DEFAULT_MAX_READ_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_WRITE_BYTES = 2 * 1024 * 1024

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_LOCK_STRIPES = 64

EntryKind = Literal["file", "dir", "symlink", "other"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DirEntry:
    """One entry of a listed directory (symlinks are reported, never followed)."""

    name: str
    kind: EntryKind
    #: Size in bytes (0 for directories and non-files).
    size: int


def _deny(detail: str, path: str) -> ToolDenied:
    return ToolDenied(detail, reason="sandbox", path=path[:200])


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


class Workspace:
    """A sandboxed directory tree: every file tool reads and writes through one of these.

    Args:
        root: the workspace directory (created if missing).
        max_read_bytes: files larger than this are refused by ``read_*``.
        max_write_bytes: contents larger than this are refused by ``write_*``.
        max_path_chars: paths longer than this are refused.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        max_read_bytes: int = DEFAULT_MAX_READ_BYTES,
        max_write_bytes: int = DEFAULT_MAX_WRITE_BYTES,
        max_path_chars: int = DEFAULT_MAX_PATH_CHARS,
    ) -> None:
        Path(root).mkdir(parents=True, exist_ok=True)
        self.root = Path(os.path.realpath(root))
        self.max_read_bytes = max_read_bytes
        self.max_write_bytes = max_write_bytes
        self.max_path_chars = max_path_chars
        # Striped locks serialise read-modify-write of one file across agents without an unbounded map.
        self._locks = tuple(threading.Lock() for _ in range(_LOCK_STRIPES))

    # Path checks -----------------------------------------------------------------------------


    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        """The workspace ``settings`` configure (``workspace_dir`` and the read/write limits)."""
        return cls(
            settings.resolved_workspace_dir(),
            max_read_bytes=settings.workspace_max_read_bytes,
            max_write_bytes=settings.workspace_max_write_bytes,
        )
    def parts(self, path: str) -> tuple[str, ...]:
        """Check ``path`` lexically and return its components relative to the root.

        Raises:
            ToolDenied: NUL byte, absolute path, ``..``, ``~``, or over-long path or component.
        """
        if not isinstance(path, str):
            raise ToolError("path must be a string relative to the workspace root")
        if "\x00" in path:
            raise _deny("path contains a NUL byte; give a plain relative path", path)
        if len(path) > self.max_path_chars:
            raise _deny(f"path is longer than {self.max_path_chars} characters", path)
        if path.startswith(("/", "\\")) or os.path.isabs(path) or (len(path) > 2 and path[1:3] in (":/", ":\\")):
            raise _deny(f"absolute paths are refused: give a path relative to the workspace root, not {path!r}",
                        path)
        if path.startswith("~"):
            raise _deny("'~' is not expanded: give a path relative to the workspace root", path)
        out = tuple(p for p in path.split("/") if p not in ("", "."))
        for part in out:
            if part == "..":
                raise _deny(f"'..' is refused in {path!r}: paths must stay inside the workspace", path)
            if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
                raise _deny(f"a path component is longer than {NAME_MAX_BYTES} bytes", path)
        return out

    def real_parts(self, path: str) -> tuple[str, ...]:
        """Resolve ``path`` (following symlinks) and return its components under the real root.

        Raises:
            ToolDenied: the lexical checks fail or the path resolves outside the workspace.
        """
        lexical = self.parts(path)
        real = os.path.realpath(os.path.join(self.root, *lexical))
        root = str(self.root)
        if real != root and not real.startswith(root + os.sep):
            raise _deny(f"{path!r} resolves outside the workspace (through a symlink); it is refused", path)
        rel = os.path.relpath(real, root)
        return () if rel == "." else tuple(rel.split(os.sep))

    def display(self, parts: tuple[str, ...]) -> str:
        """The workspace-relative form of ``parts`` shown to the model."""
        return "/".join(parts) or "."

    # Descriptor walking ----------------------------------------------------------------------

    def _check_fd(self, fd: int, parts: tuple[str, ...], path: str) -> None:
        """Re-check an open descriptor: it must still be the object at the checked path, under the root."""
        expected = os.path.join(self.root, *parts)
        try:
            actual = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # no /proc (macOS, BSD): compare identities instead
            st = os.fstat(fd)
            try:
                want = os.stat(expected, follow_symlinks=False)
            except OSError:
                raise _deny(f"{path!r} changed while it was being opened", path) from None
            if (st.st_dev, st.st_ino) != (want.st_dev, want.st_ino):
                raise _deny(f"{path!r} changed while it was being opened", path) from None
            return
        if actual != expected:
            raise _deny(f"{path!r} changed while it was being opened (now {actual!r}); refused", path)

    def _walk_dirs(self, parts: tuple[str, ...], path: str, *, create: bool = False) -> int:
        """Open the directory at ``parts`` one component at a time, never following a symlink."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for i, part in enumerate(parts):
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise ToolError(f"no such directory: {self.display(parts[: i + 1])!r}") from None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = self._open_dir_component(part, fd, parts[: i + 1], path)
                except OSError as exc:
                    raise self._component_error(exc, parts[: i + 1], path, dir_fd=fd) from None
                os.close(fd)
                fd = nxt
            self._check_fd(fd, parts, path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_dir_component(self, part: str, dir_fd: int, so_far: tuple[str, ...], path: str) -> int:
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise self._component_error(exc, so_far, path, dir_fd=dir_fd) from None

    def _component_error(self, exc: OSError, so_far: tuple[str, ...], path: str, *, dir_fd: int) -> ToolError:
        swapped = exc.errno in (errno.ELOOP, errno.EMLINK)
        if exc.errno == errno.ENOTDIR:  # Linux reports O_DIRECTORY|O_NOFOLLOW on a symlink as ENOTDIR
            with contextlib.suppress(OSError):
                swapped = stat.S_ISLNK(os.stat(so_far[-1], dir_fd=dir_fd, follow_symlinks=False).st_mode)
        if swapped:
            return _deny(f"{self.display(so_far)!r} became a symlink while {path!r} was being opened; refused",
                         path)
        if exc.errno == errno.ENOTDIR:
            return ToolError(f"{self.display(so_far)!r} is not a directory")
        if exc.errno == errno.ENAMETOOLONG:
            return _deny("path is too long", path)
        return ToolError(f"cannot open {self.display(so_far)!r}: {exc.strerror}")

    @contextlib.contextmanager
    def _leaf(self, path: str, *, create_parents: bool = False) -> Iterator[tuple[int, str, tuple[str, ...]]]:
        """Yield (directory fd, leaf name, real parts) for a file path."""
        parts = self.real_parts(path)
        if not parts:
            raise ToolError(f"{path!r} is the workspace root, a directory; name a file inside it")
        dfd = self._walk_dirs(parts[:-1], path, create=create_parents)
        try:
            yield dfd, parts[-1], parts
        finally:
            os.close(dfd)

    def _open_leaf(self, dfd: int, name: str, parts: tuple[str, ...], path: str, flags: int) -> int:
        try:
            before = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            raise ToolError(f"no such file: {self.display(parts)!r}") from None
        self._check_stat(before, path)
        self._between_check_and_open(dfd, name)
        try:
            fd = os.open(name, flags | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, dir_fd=dfd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _deny(f"{path!r} became a symlink while it was being opened; refused", path) from None
            if exc.errno in (errno.ENXIO, errno.EISDIR):
                raise _deny(f"{path!r} is not a regular file; refused", path) from None
            raise ToolError(f"cannot open {path!r}: {exc.strerror}") from None
        try:
            self._check_stat(os.fstat(fd), path)
            self._check_fd(fd, parts, path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _between_check_and_open(self, dir_fd: int, name: str) -> None:
        """The window a racing process aims for. A no-op; tests override it to swap files deterministically."""

    @staticmethod
    def _check_stat(st: os.stat_result, path: str) -> None:
        if stat.S_ISLNK(st.st_mode):
            # Only reachable in a race: real_parts resolved every symlink before the walk.
            raise _deny(f"{path!r} became a symlink while it was being opened; refused", path)
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{path!r} is a directory; use list_dir")
        if not stat.S_ISREG(st.st_mode):
            raise _deny(f"{path!r} is {_kind(st.st_mode)}, not a regular file; refused", path)
        if st.st_nlink > 1:
            raise _deny(f"{path!r} is hard-linked ({st.st_nlink} links) and may alias a file outside the "
                        "workspace; refused", path)

    def lock(self, path: str) -> threading.Lock:
        """The lock guarding read-modify-write of ``path`` (striped by resolved path)."""
        key = "/".join(self.real_parts(path)).encode("utf-8", "surrogateescape")
        return self._locks[zlib.crc32(key) % _LOCK_STRIPES]

    # Files -----------------------------------------------------------------------------------

    def read_bytes(self, path: str) -> bytes:
        """Read a whole regular file of at most ``max_read_bytes``.

        Raises:
            ToolDenied: the path escapes the workspace or is not a regular file.
            ToolError: missing file or larger than the cap.
        """
        with self._leaf(path) as (dfd, name, parts):
            fd = self._open_leaf(dfd, name, parts, path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(self.max_read_bytes + 1)
        if len(data) > self.max_read_bytes:
            raise ToolError(f"{path!r} is larger than the {self.max_read_bytes}-byte read limit; "
                            "use search_files to find the part you need")
        return data

    def read_text(self, path: str) -> str:
        return self.read_bytes(path).decode("utf-8", errors="replace")

    def write_bytes(self, path: str, data: bytes) -> int:
        """Replace (or create) a file atomically; parent directories are created as needed.

        Raises:
            ToolDenied: the path escapes the workspace, or the existing target is not a regular file.
            ToolError: the content is larger than ``max_write_bytes`` or the disk refused it.
        """
        if len(data) > self.max_write_bytes:
            raise ToolError(f"content is {len(data)} bytes, over the {self.max_write_bytes}-byte write limit")
        with self._leaf(path, create_parents=True) as (dfd, name, parts):
            mode = 0o644
            try:
                existing = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                self._check_stat(existing, path)
                mode = stat.S_IMODE(existing.st_mode)
            self._between_check_and_open(dfd, name)
            tmp = f".penguin-{os.urandom(6).hex()}.tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, mode, dir_fd=dfd)
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                    # rename() replaces a swapped-in symlink itself; it never writes through one.
                    os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp, dir_fd=dfd)
                    raise
            except OSError as exc:
                raise ToolError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        return len(data)

    # Directories -----------------------------------------------------------------------------

    def list_dir(self, path: str = ".", *, limit: int | None = None) -> list[DirEntry]:
        """The entries of a directory sorted by name (the first ``limit``); symlinks are not followed."""
        parts = self.real_parts(path)
        fd = self._walk_dirs(parts, path)
        try:
            entries = []
            for name in sorted(os.listdir(fd))[:limit]:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                kind: EntryKind
                if stat.S_ISREG(st.st_mode):
                    kind = "file"
                elif stat.S_ISDIR(st.st_mode):
                    kind = "dir"
                elif stat.S_ISLNK(st.st_mode):
                    kind = "symlink"
                else:
                    kind = "other"
                entries.append(DirEntry(name=name, kind=kind, size=st.st_size if kind == "file" else 0))
            return entries
        finally:
            os.close(fd)

    def iter_files(
        self, path: str = ".", *, skip_dirs: frozenset[str] = frozenset()
    ) -> Generator[tuple[str, bytes], None, None]:
        """Yield (workspace path, content) for every regular file under ``path``.

        Symlinks are never followed; files over the read cap, and unreadable or special files, are
        skipped silently (a search should not fail on one odd file).
        """
        parts = self.real_parts(path)
        top = self._walk_dirs(parts, path)
        try:
            for dirpath, dirnames, filenames, dirfd in os.fwalk(".", dir_fd=top):
                dirnames[:] = sorted(d for d in dirnames if d not in skip_dirs)
                rel = tuple(p for p in dirpath.split("/") if p not in ("", "."))
                for name in sorted(filenames):
                    content = self._read_quiet(dirfd, name)
                    if content is not None:
                        yield self.display((*parts, *rel, name)), content
        finally:
            os.close(top)

    def _read_quiet(self, dirfd: int, name: str) -> bytes | None:
        try:
            fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC, dir_fd=dirfd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1 or st.st_size > self.max_read_bytes:
                return None
            return fh.read(self.max_read_bytes)
