"""The workspace sandbox: every way out is refused, every way in still works.

Each escape test names the trick it tries. Refusals are ``ToolDenied`` with ``reason="sandbox"``;
tricks that are not escapes at all (percent-encoding, look-alike dots, backslashes) are taken
literally and end in "no such file", never in the file outside.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from penguin.errors import ToolDenied, ToolError
from penguin.tools.sandbox import DirEntry, Workspace

SECRET = b"top secret outside the workspace"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_bytes(SECRET)
    return d


@pytest.fixture
def ws(tmp_path: Path, outside: Path) -> Workspace:
    w = Workspace(tmp_path / "ws", max_read_bytes=1024, max_write_bytes=1024)
    (w.root / "sub").mkdir()
    (w.root / "sub" / "a.txt").write_text("hello\n")
    return w


def denied(fn: Callable[[], object], match: str) -> ToolDenied:
    with pytest.raises(ToolDenied, match=match) as info:
        fn()
    assert info.value.extra["reason"] == "sandbox"
    return info.value


# -- lexical escapes ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("path", "match"),
    [
        ("/etc/passwd", "absolute paths are refused"),
        ("//etc/passwd", "absolute paths are refused"),
        ("\\etc\\passwd", "absolute paths are refused"),
        ("C:/Windows/win.ini", "absolute paths are refused"),
        ("../outside/secret.txt", r"'\.\.' is refused"),
        ("sub/../../outside/secret.txt", r"'\.\.' is refused"),
        ("sub/./../..", r"'\.\.' is refused"),
        ("sub/a.txt\x00.png", "NUL byte"),
        ("~/secret.txt", "'~' is not expanded"),
        ("a/" * 600 + "x", "longer than 1024 characters"),
        ("x" * 256, "longer than 255 bytes"),
        ("é" * 128, "longer than 255 bytes"),  # 128 characters but 256 bytes
    ],
)
def test_lexical_escapes_are_refused_for_read_and_write(ws: Workspace, path: str, match: str) -> None:
    denied(lambda: ws.read_bytes(path), match)
    denied(lambda: ws.write_bytes(path, b"x"), match)


def test_absolute_path_to_a_file_outside(ws: Workspace, outside: Path) -> None:
    denied(lambda: ws.read_bytes(str(outside / "secret.txt")), "absolute paths are refused")


# -- symlinks ----------------------------------------------------------------------------------

def test_symlinked_file_pointing_outside(ws: Workspace, outside: Path) -> None:
    (ws.root / "link.txt").symlink_to(outside / "secret.txt")
    denied(lambda: ws.read_bytes("link.txt"), "resolves outside the workspace")
    denied(lambda: ws.write_bytes("link.txt", b"pwned"), "resolves outside the workspace")
    assert (outside / "secret.txt").read_bytes() == SECRET


def test_symlinked_directory_in_the_middle_of_the_path(ws: Workspace, outside: Path) -> None:
    (ws.root / "sub" / "door").symlink_to(outside, target_is_directory=True)
    denied(lambda: ws.read_bytes("sub/door/secret.txt"), "resolves outside")
    denied(lambda: ws.write_bytes("sub/door/new.txt", b"x"), "resolves outside")
    denied(lambda: ws.write_bytes("sub/door/deeper/new.txt", b"x"), "resolves outside")
    denied(lambda: ws.list_dir("sub/door"), "resolves outside")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_chain_of_symlinks_that_ends_outside(ws: Workspace, outside: Path) -> None:
    (ws.root / "hop2").symlink_to(outside / "secret.txt")
    (ws.root / "hop1").symlink_to(ws.root / "hop2")
    denied(lambda: ws.read_bytes("hop1"), "resolves outside")


def test_relative_symlink_climbing_out(ws: Workspace) -> None:
    (ws.root / "sub" / "up").symlink_to("../../outside/secret.txt")
    denied(lambda: ws.read_bytes("sub/up"), "resolves outside")


def test_dev_zero_through_a_symlink(ws: Workspace) -> None:
    (ws.root / "zero").symlink_to("/dev/zero")
    denied(lambda: ws.read_bytes("zero"), "resolves outside")


def test_symlink_to_the_root_of_the_filesystem(ws: Workspace) -> None:
    (ws.root / "slash").symlink_to("/")
    denied(lambda: ws.read_bytes("slash/etc/passwd"), "resolves outside")


# -- special files -----------------------------------------------------------------------------

def test_fifo_is_refused_without_blocking(ws: Workspace) -> None:
    os.mkfifo(ws.root / "pipe")
    denied(lambda: ws.read_bytes("pipe"), "is a FIFO, not a regular file")
    denied(lambda: ws.write_bytes("pipe", b"x"), "is a FIFO")


def test_unix_socket_is_refused(ws: Workspace) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cwd = os.getcwd()
    try:
        os.chdir(ws.root)  # AF_UNIX paths are limited to ~108 bytes; bind relative to stay short
        sock.bind("sock")
    finally:
        os.chdir(cwd)
    try:
        denied(lambda: ws.read_bytes("sock"), "is a socket")
    finally:
        sock.close()


def test_hard_link_to_a_file_outside_is_refused(ws: Workspace, outside: Path) -> None:
    os.link(outside / "secret.txt", ws.root / "alias.txt")
    denied(lambda: ws.read_bytes("alias.txt"), "hard-linked")
    denied(lambda: ws.write_bytes("alias.txt", b"pwned"), "hard-linked")
    assert (outside / "secret.txt").read_bytes() == SECRET


# -- races between the check and the open --------------------------------------------------------

class LeafSwapper(Workspace):
    """Swaps the checked file for a symlink to ``target`` in the check-to-open window."""

    target: Path

    def _between_check_and_open(self, dir_fd: int, name: str) -> None:
        os.unlink(name, dir_fd=dir_fd)
        os.symlink(self.target, name, dir_fd=dir_fd)


class DirSwapper(Workspace):
    """Replaces directory ``sub`` by a symlink to ``target`` right after the path was resolved."""

    target: Path

    def real_parts(self, path: str) -> tuple[str, ...]:
        parts = super().real_parts(path)
        sub = self.root / "sub"
        if sub.is_dir() and not sub.is_symlink():
            sub.rename(self.root / "sub.moved")
            sub.symlink_to(self.target, target_is_directory=True)
        return parts


def test_race_file_swapped_for_a_symlink_between_check_and_open(tmp_path: Path, outside: Path) -> None:
    ws = LeafSwapper(tmp_path / "race")
    ws.target = outside / "secret.txt"
    (ws.root / "victim.txt").write_text("harmless")
    # O_NOFOLLOW on the leaf turns the swapped-in symlink into ELOOP: refused, secret not read.
    denied(lambda: ws.read_bytes("victim.txt"), "became a symlink while it was being opened")


def test_race_write_target_swapped_for_a_symlink_never_writes_through_it(tmp_path: Path, outside: Path) -> None:
    ws = LeafSwapper(tmp_path / "race")
    ws.target = outside / "secret.txt"
    (ws.root / "victim.txt").write_text("harmless")
    ws.write_bytes("victim.txt", b"new content")
    # rename() replaced the symlink itself; the file outside is untouched.
    assert (outside / "secret.txt").read_bytes() == SECRET
    assert not (ws.root / "victim.txt").is_symlink()
    assert (ws.root / "victim.txt").read_bytes() == b"new content"


def test_race_directory_swapped_for_a_symlink_mid_path(tmp_path: Path, outside: Path) -> None:
    (outside / "a.txt").write_bytes(SECRET)
    ws = DirSwapper(tmp_path / "race")
    ws.target = outside
    (ws.root / "sub").mkdir()
    (ws.root / "sub" / "a.txt").write_text("inside")
    # The walk opens each directory with O_NOFOLLOW relative to its parent: the swap is caught.
    denied(lambda: ws.read_bytes("sub/a.txt"), "'sub' became a symlink")


def test_race_directory_swap_on_write(tmp_path: Path, outside: Path) -> None:
    ws = DirSwapper(tmp_path / "race")
    ws.target = outside
    (ws.root / "sub").mkdir()
    denied(lambda: ws.write_bytes("sub/new.txt", b"x"), "'sub' became a symlink")
    assert not (outside / "new.txt").exists()


def test_post_open_check_rejects_a_descriptor_that_is_not_the_checked_path(ws: Workspace, outside: Path) -> None:
    fd = os.open(outside / "secret.txt", os.O_RDONLY)
    try:
        denied(lambda: ws._check_fd(fd, ("sub", "a.txt"), "sub/a.txt"), "changed while it was being opened")
    finally:
        os.close(fd)


# -- tricks that are not escapes: taken literally ------------------------------------------------

@pytest.mark.parametrize(
    "path",
    [
        "%2e%2e/outside/secret.txt",
        "..%2f..%2foutside%2fsecret.txt",
        "\u2024\u2024/outside/secret.txt",  # one-dot leaders that look like '..'
        "\uff0e\uff0e/outside/secret.txt",  # fullwidth full stops
        "..\\outside\\secret.txt",  # backslashes are ordinary characters on POSIX
        ".../outside/secret.txt",  # three dots are a name, not a parent
    ],
)
def test_encoded_and_look_alike_tricks_are_literal_names(ws: Workspace, path: str) -> None:
    with pytest.raises(ToolError, match="no such") as info:
        ws.read_bytes(path)
    assert not isinstance(info.value, ToolDenied)


# -- what is allowed ---------------------------------------------------------------------------

def test_symlinks_that_stay_inside_work(ws: Workspace) -> None:
    (ws.root / "alias").symlink_to(ws.root / "sub", target_is_directory=True)
    (ws.root / "short").symlink_to("sub/a.txt")
    assert ws.read_bytes("alias/a.txt") == b"hello\n"
    assert ws.read_bytes("short") == b"hello\n"
    ws.write_bytes("alias/b.txt", b"via alias")
    assert (ws.root / "sub" / "b.txt").read_bytes() == b"via alias"


def test_paths_are_normalised_relative_to_the_root(ws: Workspace) -> None:
    assert ws.parts("./sub//a.txt/") == ("sub", "a.txt")
    assert ws.parts(".") == ()
    assert ws.read_bytes("./sub/./a.txt") == b"hello\n"


def test_write_creates_parents_and_keeps_mode(ws: Workspace) -> None:
    assert ws.write_bytes("deep/er/new.txt", b"abc") == 3
    assert (ws.root / "deep" / "er" / "new.txt").read_bytes() == b"abc"
    (ws.root / "sub" / "a.txt").chmod(0o600)
    ws.write_bytes("sub/a.txt", b"changed")
    assert (ws.root / "sub" / "a.txt").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (ws.root / "sub").iterdir() if p.name.startswith(".penguin-")] == []


def test_size_caps(ws: Workspace) -> None:
    (ws.root / "big.bin").write_bytes(b"x" * 1025)
    with pytest.raises(ToolError, match="larger than the 1024-byte read limit"):
        ws.read_bytes("big.bin")
    with pytest.raises(ToolError, match="over the 1024-byte write limit"):
        ws.write_bytes("big2.bin", b"x" * 1025)
    assert not (ws.root / "big2.bin").exists()
    assert len(ws.read_bytes("sub/a.txt")) == 6


def test_ordinary_failures_are_tool_errors(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="no such file: 'sub/missing.txt'"):
        ws.read_bytes("sub/missing.txt")
    with pytest.raises(ToolError, match="no such directory: 'nope'"):
        ws.read_bytes("nope/x.txt")
    with pytest.raises(ToolError, match="is a directory"):
        ws.read_bytes("sub")
    with pytest.raises(ToolError, match="workspace root"):
        ws.read_bytes(".")
    with pytest.raises(ToolError, match="not a directory"):
        ws.write_bytes("sub/a.txt/child.txt", b"x")


def test_list_dir_reports_symlinks_without_following(ws: Workspace, outside: Path) -> None:
    (ws.root / "out").symlink_to(outside, target_is_directory=True)
    os.mkfifo(ws.root / "pipe")
    assert ws.list_dir(".") == [
        DirEntry(name="out", kind="symlink", size=0),
        DirEntry(name="pipe", kind="other", size=0),
        DirEntry(name="sub", kind="dir", size=0),
    ]
    assert ws.list_dir("sub") == [DirEntry(name="a.txt", kind="file", size=6)]


def test_iter_files_never_follows_symlinks_out(ws: Workspace, outside: Path) -> None:
    (ws.root / "out").symlink_to(outside, target_is_directory=True)
    (ws.root / "sub" / "s.txt").symlink_to(outside / "secret.txt")
    os.mkfifo(ws.root / "sub" / "pipe")
    assert [p for p, _ in ws.iter_files(".")] == ["sub/a.txt"]
