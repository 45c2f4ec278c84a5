"""Escapes from ``run_shell``, each tried by a real agent turn against the real sandbox.

An agent with the ``scripted:tool`` model calls ``run_shell`` with an attack; the reply is the
command's output. The tests run as root (here and in CI), so file permissions stop nothing: each
isolation escape is also run with ``shell_sandbox = "off"``, where it must succeed, which shows
that the sandbox, not the machine, refused it. Resource escapes are refused by limits, and are
checked against what they left behind on the host.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from penguin import PenguinCore
from penguin.errors import TurnCancelled

#: Limits of the test cores: small, so that reaching them is quick.
LIMITS: dict[str, Any] = {
    "shell_timeout": 10.0,
    "shell_cpu_seconds": 2,
    "shell_memory_bytes": 256 * 1024**2,
    "shell_max_processes": 32,
    "shell_max_file_bytes": 4 * 1024**2,
    "shell_tmp_bytes": 4 * 1024**2,
}
#: Names of the sandbox's own environment: any other ``NAME=value`` in an output came from a host process.
SANDBOX_ENV = {"PATH", "HOME", "PWD", "TMPDIR", "LANG", "LC_ALL", "TERM"}
#: What bubblewrap's minimal /dev holds.
SANDBOX_DEV = {"console", "core", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout",
               "tty", "urandom", "zero"}
SECRET = f"secret-{uuid.uuid4().hex}"
PONG = b"PONG-from-the-host"


def running(marker: str) -> list[int]:
    """Host pids of live processes whose command line contains ``marker`` (sandboxed pids are namespaced)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat") as fh:
                state = fh.read().rsplit(") ", 1)[1][0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry))
    return found


def host_environment() -> set[str]:
    """``NAME=value`` entries this process (the server) started with, less the sandbox's own names."""
    with open("/proc/self/environ", "rb") as fh:
        entries = fh.read().decode(errors="replace").split("\0")
    return {e for e in entries if "=" in e and e.split("=", 1)[0] not in SANDBOX_ENV}


class Shell:
    """Runs commands as an agent's ``run_shell`` calls, through chat turns of a real core."""

    def __init__(self, core: PenguinCore, places: dict[str, Any]) -> None:
        self.core = core
        self.places = {"data_dir": core.settings.data_dir.resolve(), "server_pid": os.getpid(), **places}
        self._agents = 0

    async def __call__(self, command: str, *, network: bool = False, timeout: float | None = None) -> str:
        self._agents += 1
        agent = f"attacker-{self._agents}"
        arguments: dict[str, Any] = {"command": command.format(**self.places)}
        if timeout is not None:
            arguments["timeout"] = timeout
        await self.core.create_agent(
            agent, model="scripted:tool", model_parameters={"tool": "run_shell", "arguments": arguments},
            tool_policy={"shell": True, "shell_network": network},
        )
        return (await self.core.chat("go", agent_id=agent)).text


@pytest.fixture
async def places(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """Things on the host a command must not reach: a file, a TCP listener on loopback, an abstract socket."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(PONG)
        await writer.drain()
        writer.close()

    secret_file = tmp_path / "beside-the-data-dir.txt"
    secret_file.write_text(SECRET)
    abstract = f"penguin-escape-{uuid.uuid4().hex}"
    tcp = await asyncio.start_server(answer, "127.0.0.1", 0)
    unix = await asyncio.start_unix_server(answer, path="\0" + abstract)
    async with tcp, unix:
        yield {"secret_file": secret_file, "port": tcp.sockets[0].getsockname()[1], "abstract": abstract}


@pytest.fixture
async def confined(tmp_path: Path, places: dict[str, Any]) -> AsyncIterator[Shell]:
    async with PenguinCore(data_dir=tmp_path / "data", model="scripted:echo", **LIMITS) as core:
        yield Shell(core, places)


@pytest.fixture
async def unconfined(tmp_path: Path, places: dict[str, Any]) -> AsyncIterator[Shell]:
    async with PenguinCore(data_dir=tmp_path / "open", model="scripted:echo", shell_sandbox="off", **LIMITS) as core:
        yield Shell(core, places)


def _connect(address: str) -> str:
    return (f"python3 -c \"import socket; s = socket.socket({address.split('|')[0]}); s.settimeout(3); "
            f"s.connect({address.split('|')[1]}); print(s.recv(100))\"")


@dataclass(frozen=True)
class Escape:
    """An attempt to reach something outside the sandbox, and how to tell it worked (from its output
    and the data directory of the core it attacked)."""

    name: str
    command: str
    leaked: Callable[[str, Path], bool]


def _leaks_environment(out: str, data_dir: Path) -> bool:
    return any(entry in out.splitlines() for entry in host_environment())


def _shows(text: str) -> Callable[[str, Path], bool]:
    return lambda out, data_dir: text in out


ISOLATION = [
    Escape("data dir, relative path", "head -c 15 ../penguin.db", _shows("SQLite format 3")),
    Escape("data dir, absolute path", "head -c 15 {data_dir}/penguin.db", _shows("SQLite format 3")),
    Escape("data dir, listing", "ls -a {data_dir}", _shows("penguin.db")),
    Escape("data dir, write", "echo planted > {data_dir}/planted",
           lambda out, data_dir: (data_dir / "planted").exists()),
    Escape("a file beside the data dir", "cat {secret_file}", _shows(SECRET)),
    Escape("parent's environment", "tr '\\0' '\\n' < /proc/$PPID/environ", _leaks_environment),
    Escape("every process's environment", "cat /proc/[0-9]*/environ | tr '\\0' '\\n'", _leaks_environment),
    Escape("the server's process", "kill -0 {server_pid} && echo SERVER-VISIBLE", _shows("SERVER-VISIBLE")),
    Escape("home directories", "ls -d /root /home", lambda out, data_dir: "cannot access '/root'" not in out),
    Escape("password hashes", "cat /etc/shadow", _shows("root:")),
    Escape("a TCP listener on the host's loopback", _connect("|('127.0.0.1', {port})"),
           _shows(PONG.decode())),
    Escape("an abstract unix socket on the host", _connect("socket.AF_UNIX|'\\\\0{abstract}'"),
           _shows(PONG.decode())),
    Escape("the host's network interfaces", "python3 -c 'import socket; print(socket.if_nameindex())'",
           _shows("), (")),
    Escape("the host's devices", "ls /dev", lambda out, data_dir: bool(set(out.split()[3:]) - SANDBOX_DEV)),
    Escape("a new user namespace (root inside)", "unshare -Ur id -u && echo UNSHARED", _shows("UNSHARED")),
]


@pytest.mark.parametrize("escape", ISOLATION, ids=[e.name for e in ISOLATION])
async def test_isolation_escapes_are_refused(escape: Escape, confined: Shell, unconfined: Shell) -> None:
    refused = await confined(escape.command)
    assert not escape.leaked(refused, confined.places["data_dir"]), refused
    assert refused.startswith("exit code: ")
    # The same command, unconfined, does reach its target: the sandbox is what stopped it.
    leaked = await unconfined(escape.command)
    assert escape.leaked(leaked, unconfined.places["data_dir"]), leaked


async def test_the_workspace_is_the_shells_and_nothing_else_writes(confined: Shell, tmp_path: Path) -> None:
    out = await confined("echo made > made.txt && cat made.txt && pwd && touch /usr/x /etc/x /x; id -u")
    workspace = tmp_path / "data" / "workspace"
    assert out.splitlines()[1:3] == ["made", str(workspace)]
    assert (workspace / "made.txt").read_text() == "made\n"
    for path in ("/usr/x", "/etc/x", "/x"):
        assert f"touch: cannot touch '{path}': Read-only file system" in out
    assert not any(map(os.path.lexists, ("/usr/x", "/etc/x", "/x")))
    assert out.splitlines()[-1] == "1000"


async def test_network_is_the_agents_choice(confined: Shell) -> None:
    command = _connect("|('127.0.0.1', {port})")
    assert PONG.decode() not in await confined(command)
    assert PONG.decode() in await confined(command, network=True)


async def test_the_server_cannot_be_killed_from_the_shell(confined: Shell) -> None:
    out = await confined("kill -9 {server_pid}; echo still here")
    assert "No such process" in out and "still here" in out


async def test_a_fork_bomb_hits_the_process_limit(confined: Shell) -> None:
    script = ("import os, signal\\nn = 0\\ntry:\\n    while n < 1000:\\n        if os.fork() == 0:\\n"
              "            signal.pause()\\n        n += 1\\nexcept OSError:\\n    print(\"refused after\", n)")
    out = await confined(f"printf '{script}' > bomb.py && python3 bomb.py")
    refused_after = int(out.split("refused after ")[1].split()[0])
    assert 0 < refused_after < LIMITS["shell_max_processes"]


async def test_a_shell_fork_bomb_ends_and_leaves_nothing(confined: Shell) -> None:
    marker = f"bomb-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    out = await confined(f"b() {{{{ b | b & }}}}; b; sleep 1; echo {marker}", timeout=3)
    assert time.monotonic() - started < 8
    assert out.startswith(("exit code:", "error: command timed out after 3s"))
    assert running(marker) == []


async def test_background_processes_do_not_survive_the_call(confined: Shell) -> None:
    tag = f"600.{uuid.uuid4().int % 10**6:06d}"
    out = await confined(f"setsid sleep {tag}1 >/dev/null 2>&1 & nohup sleep {tag}2 >/dev/null 2>&1 & "
                         f"(sleep {tag}3 >/dev/null 2>&1 &); echo started")
    assert out == "exit code: 0\nstarted\n"
    assert running(f"sleep {tag}") == []


async def test_a_10_gb_write_stops_at_the_file_size_limit(confined: Shell, tmp_path: Path) -> None:
    out = await confined("head -c 10G /dev/zero > big1; fallocate -l 10G big2; truncate -s 10G big3; "
                         "dd if=/dev/zero of=big4 bs=1M seek=10240 count=1 2>/dev/null; ls")
    workspace = tmp_path / "data" / "workspace"
    assert "File size limit exceeded" in out or "File too large" in out
    sizes = {p.name: p.stat().st_size for p in workspace.glob("big*")}
    assert sizes and max(sizes.values()) <= LIMITS["shell_max_file_bytes"], sizes


async def test_tmp_is_private_and_small(confined: Shell) -> None:
    out = await confined("head -c 3M /dev/zero > /tmp/a; head -c 3M /dev/zero > /tmp/b; cat /tmp/a /tmp/b | wc -c")
    assert "No space left on device" in out
    assert int(out.split()[-1]) <= LIMITS["shell_tmp_bytes"]


async def test_memory_is_limited(confined: Shell) -> None:
    out = await confined("python3 -c 'bytearray(1024**3)'")
    assert "MemoryError" in out


async def test_cpu_time_is_limited(confined: Shell) -> None:
    started = time.monotonic()
    out = await confined("python3 -c 'while True: pass'; echo status $?")
    assert time.monotonic() - started < LIMITS["shell_timeout"] - 2
    assert "status 152" in out  # 128 + SIGXCPU


async def test_core_stop_kills_running_commands(confined: Shell, tmp_path: Path) -> None:
    tag = f"700.{uuid.uuid4().int % 10**6:06d}"
    ready = tmp_path / "data" / "workspace" / "ready"
    os.mkfifo(ready)
    chat = asyncio.create_task(confined(f"setsid sleep {tag} & sleep {tag} & echo up > ready; wait"))
    async with asyncio.timeout(10):
        assert await asyncio.to_thread(ready.read_text) == "up\n"
    assert len(running(f"sleep {tag}")) >= 2  # the sleeps, and the sandbox whose command line names them
    await confined.core.stop()
    assert running(f"sleep {tag}") == []
    with pytest.raises(TurnCancelled):
        await chat
