"""Run a real ``penguin serve`` subprocess on 127.0.0.1 for the API tests.

The process is the installed console script with a temporary ``PENGUIN_DATA_DIR`` and the
scripted model, so the tests exercise exactly what a user runs. Readiness is read from the
process's own log line ("Uvicorn running on ...") before ``/api/v1/health`` is polled, so a
server that some other process already runs on the port is never mistaken for ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from penguin import PenguinCore
from penguin.api import create_app

STARTUP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def penguin_executable() -> list[str]:
    exe = shutil.which("penguin") or str(Path(sys.executable).with_name("penguin"))
    if not Path(exe).exists():
        raise RuntimeError("the 'penguin' console script is not installed; run pip install -e .")
    return [exe]


class ServerFailed(RuntimeError):
    """The server process exited or did not become ready."""


class PenguinServer:
    """One ``penguin serve`` process; ``start()`` waits until it answers, ``stop()`` sends SIGTERM."""

    def __init__(self, data_dir: Path, *, port: int | None = None, env: Mapping[str, str] | None = None,
                 model: str = "scripted:echo") -> None:
        self.data_dir = data_dir
        self.port = port if port is not None else free_port()
        self.host = "127.0.0.1"
        self.env = {
            **os.environ,
            "PENGUIN_DATA_DIR": str(data_dir),
            "PENGUIN_MODEL": model,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.process: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> PenguinServer:
        self.process = subprocess.Popen(
            [*penguin_executable(), "serve", "--host", self.host, "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.data_dir,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._ready.wait(0.02):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise ServerFailed(f"penguin serve on port {self.port} did not start:\n" + "".join(self.log))
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while client.get("/api/v1/health").status_code != 200:  # pragma: no cover - ready means up
                if time.monotonic() > deadline:
                    raise ServerFailed("the server never became healthy")
                time.sleep(0.05)
        return self

    def _read_log(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        marker = f"running on http://{self.host}:{self.port}"
        for line in self.process.stdout:
            self.log.append(line)
            if marker in line:
                self._ready.set()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful shutdown) and wait; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ServerFailed("the server did not stop within the timeout:\n" + "".join(self.log)) from None
        if self._reader is not None:
            self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)


def start_server(data_dir: Path, *, prefer_port: int | None = None, **kwargs: object) -> PenguinServer:
    """Start a server, on ``prefer_port`` when it is free (else on a random free port)."""
    if prefer_port is not None and port_is_free(prefer_port):
        try:
            return PenguinServer(data_dir, port=prefer_port, **kwargs).start()  # type: ignore[arg-type]
        except ServerFailed:
            pass  # someone took the port between the check and the bind
    return PenguinServer(data_dir, **kwargs).start()  # type: ignore[arg-type]


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll ``check`` (a remote condition no event announces) until it holds, or fail after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            if await check():
                return
            await asyncio.sleep(interval)


class InProcessServer:
    """uvicorn serving ``create_app(core, **options)`` on a loopback port inside the test's loop.

    ``send_buffer`` shrinks the kernel send buffer of accepted connections (inherited from the
    listening socket), so a client that stops reading fills it after a few kilobytes.
    """

    def __init__(self, core: PenguinCore, *, send_buffer: int | None = None, **options: Any) -> None:
        self.app = create_app(core, **options)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if send_buffer is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        self.socket.bind(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> InProcessServer:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.socket]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def shutdown(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
