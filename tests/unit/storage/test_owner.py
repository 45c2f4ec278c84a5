"""One owner per data directory and per PostgreSQL database: the lock, its record, its release."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from penguin import DataDirInUse, PenguinAgent, PenguinCore
from penguin.storage.owner import DataDirLock, read_owner


def test_a_second_lock_on_the_directory_is_refused_with_the_owner_named(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    info = first.acquire(role="serve")
    first.advertise("http://127.0.0.1:8123")
    try:
        owner = read_owner(tmp_path)
        assert owner is not None
        assert (owner.pid, owner.role, owner.url) == (os.getpid(), "serve", "http://127.0.0.1:8123")
        assert owner.started_at == info.started_at
        with pytest.raises(DataDirInUse) as refused:
            DataDirLock(tmp_path).acquire(role="python")
        assert f"pid {os.getpid()}" in refused.value.detail
        assert "http://127.0.0.1:8123" in refused.value.detail
        assert refused.value.extra == {"owner_pid": os.getpid(), "owner_url": "http://127.0.0.1:8123"}
        assert first.acquire(role="serve") is first.info  # idempotent for its holder
    finally:
        first.release()
    assert read_owner(tmp_path) is None
    again = DataDirLock(tmp_path)
    again.acquire(role="python")
    again.release()


def test_the_lock_dies_with_its_process(tmp_path: Path) -> None:
    """kill -9 leaves the record behind but frees the lock: nobody is reported as the owner."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from penguin.storage.owner import DataDirLock\n"
        "DataDirLock(Path(sys.argv[1])).acquire(role='python')\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        owner = read_owner(tmp_path)
        assert owner is not None and owner.pid == child.pid and owner.url is None
        with pytest.raises(DataDirInUse, match=f"pid {child.pid}"):
            DataDirLock(tmp_path).acquire(role="python")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert (tmp_path / "penguin.lock").read_text()  # the stale record is still there
    assert read_owner(tmp_path) is None
    lock = DataDirLock(tmp_path)
    assert lock.acquire(role="python").pid == os.getpid()
    lock.release()


async def test_a_core_owns_its_data_directory_until_it_stops(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        owner = read_owner(tmp_path)
        assert owner is not None and (owner.pid, owner.role) == (os.getpid(), "python")
        second = PenguinCore(data_dir=tmp_path, model="scripted:echo")
        with pytest.raises(DataDirInUse, match="is in use by pid"):
            await second.start()
        await core.chat("still mine", agent_id="a")
    assert read_owner(tmp_path) is None
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        assert [m.content for m in await core.history("a")] == ["still mine"] * 2


def test_penguin_agent_on_an_owned_directory_names_the_owner(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    lock.acquire(role="serve", url="http://127.0.0.1:8999")
    try:
        with pytest.raises(DataDirInUse) as refused:
            PenguinAgent(data_dir=tmp_path, model="scripted:echo")
        assert "PenguinClient('http://127.0.0.1:8999')" in refused.value.detail
    finally:
        lock.release()


@pytest.mark.postgres
async def test_two_processes_on_one_postgres_database_fail_clearly(tmp_path: Path, pg_database: str) -> None:
    """Until replicas can share a database, a second core on it is refused at start, never a 500 later."""
    first = PenguinCore(data_dir=tmp_path / "a", database_url=pg_database, model="scripted:echo")
    async with first:
        await first.advertise("http://127.0.0.1:8001")
        second = PenguinCore(data_dir=tmp_path / "b", database_url=pg_database, model="scripted:echo")
        started = time.monotonic()
        with pytest.raises(DataDirInUse) as refused:
            await second.start()
        assert time.monotonic() - started < 5
        assert refused.value.field == "database_url"
        assert f"pid {os.getpid()}" in refused.value.detail and "http://127.0.0.1:8001" in refused.value.detail
        await first.chat("first owns it", agent_id="a")
    async with PenguinCore(data_dir=tmp_path / "b", database_url=pg_database, model="scripted:echo") as second:
        assert [m.content for m in await second.history("a")][-2:] == ["first owns it"] * 2
