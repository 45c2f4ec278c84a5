"""Fixtures of the API tests: a real ``penguin serve`` process, and in-process apps over a core."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from penguin_server import InProcessServer, PenguinServer

from penguin import PenguinCore
from penguin.api_client import PenguinClient


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PenguinServer]:
    """One ``penguin serve`` subprocess for the session (scripted:echo, temp data dir)."""
    proc = PenguinServer(tmp_path_factory.mktemp("penguin-server")).start()
    yield proc
    code = proc.stop()
    # uvicorn re-raises the signal it handled after a clean shutdown: -SIGTERM is a graceful exit.
    assert code in (0, -15) and "Application shutdown complete." in "".join(proc.log), "".join(proc.log)


@pytest.fixture
async def http(server: PenguinServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def remote(server: PenguinServer) -> AsyncIterator[PenguinClient]:
    """A ``PenguinClient`` talking to the real server over loopback."""
    async with PenguinClient(server.url, timeout=30) as client:
        yield client


@pytest.fixture
async def app_core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        yield core


@pytest.fixture
async def local(app_core: PenguinCore) -> AsyncIterator[PenguinClient]:
    """A ``PenguinClient`` calling an app over ``app_core`` served by uvicorn on loopback in this loop."""
    async with InProcessServer(app_core) as server, PenguinClient(server.url, timeout=30) as client:
        yield client
