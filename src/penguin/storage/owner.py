"""One owner per data directory: an exclusive lock that names the process holding it.

Two processes writing one SQLite database behind each other's backs corrupt what each keeps in
memory (agent registry, conversation sequence numbers, the bus sequence): a chat on one then
fails on a ``UNIQUE`` constraint the other made true. So every ``PenguinCore`` takes
``<data_dir>/penguin.lock`` with ``flock`` before it opens its database, and a server writes the
URL it listens on into the file. Other local processes read it: the CLI becomes a client of that
server, and a second server or a ``PenguinAgent`` is refused with the owner's pid and URL.

``flock`` is released by the kernel when the holder exits, however it exits (``kill -9``
included), so a lock is never stale; the file's text may be, and is only read while the lock is
held by someone else.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from penguin._version import __version__
from penguin.errors import DataDirInUse
from penguin.storage.schema import kv

LOCK_NAME = "penguin.lock"
#: How long ``acquire`` retries a busy lock before it reports the owner: a CLI reading who owns
#: the directory holds a shared lock for microseconds, and that must not refuse a starting server.
_ACQUIRE_PATIENCE = 0.5
#: The advisory lock key of a PostgreSQL database's owner ("pen_ownr" in ASCII). It must differ
#: from the migrations' key (``storage.migrate.PG_LOCK_KEY``): a process waiting to migrate would
#: otherwise wait forever on the owner's session lock instead of being refused.
_PG_OWNER_KEY = 0x70656E5F6F776E72


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerInfo:
    """Who holds a data directory."""

    #: Process id of the holder.
    pid: int
    #: Host name of the holder.
    host: str
    #: What the holder is: ``serve``, ``demo``, ``python`` (a ``PenguinCore`` in a program), ``cli``.
    role: str
    #: Where the holder's API listens (``http://127.0.0.1:8000``); None when it serves no API.
    url: str | None = None
    #: Penguin version of the holder.
    version: str = ""
    #: When it took the lock (epoch seconds).
    started_at: float = 0.0

    def describe(self) -> str:
        where = f" serving {self.url}" if self.url else ""
        return f"pid {self.pid} on {self.host} ({self.role}{where})"


class DataDirLock:
    """The exclusive lock of one data directory, held from ``acquire`` until ``release``.

    Args:
        data_dir: the directory to own (created if needed).
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None
        self._info: OwnerInfo | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def info(self) -> OwnerInfo | None:
        """What this lock says about its holder while held (None otherwise)."""
        return self._info

    def acquire(self, *, role: str, url: str | None = None) -> OwnerInfo:
        """Take the lock (idempotent) and record this process as the owner.

        Raises:
            DataDirInUse: another process holds it; the error names that process and its URL.
        """
        if self._fd is not None and self._info is not None:
            return self._info
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + _ACQUIRE_PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                os.close(fd)
                raise _in_use(self.data_dir, read_owner(self.data_dir)) from None
        self._fd = fd
        self._info = OwnerInfo(
            pid=os.getpid(), host=socket.gethostname(), role=role, url=url, version=__version__,
            started_at=time.time(),
        )
        self._write()
        return self._info

    def advertise(self, url: str) -> None:
        """Record where this owner's API listens (call once it is bound)."""
        if self._info is None:
            raise RuntimeError("advertise() before acquire()")
        self._info = OwnerInfo(**{**asdict(self._info), "url": url})
        self._write()

    def release(self) -> None:
        fd, self._fd = self._fd, None
        self._info = None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor releases the flock

    def _write(self) -> None:
        assert self._fd is not None and self._info is not None
        data = orjson.dumps(asdict(self._info))
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)


class DatabaseLock:
    """Exclusive use of one PostgreSQL database by one process, until several replicas can share it.

    A session-level advisory lock held on a dedicated connection: the server drops it when the
    process exits or its connection dies. The holder's ``OwnerInfo`` is kept in the ``kv`` table
    so that a refused process can name it.

    Args:
        engine: the database's async engine.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None

    async def acquire(self, info: OwnerInfo, *, record: bool = True) -> None:
        """Take the lock for ``info``'s process (idempotent).

        Args:
            info: the process taking it.
            record: keep ``info`` in the ``kv`` table for refused processes to read (needs the
                schema: ``penguin db upgrade`` takes the lock before there may be one).

        Raises:
            DataDirInUse: another process uses the database; the error names it.
        """
        if self._conn is not None:
            return
        conn = await self._engine.connect()
        try:
            got = (await conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_OWNER_KEY})).scalar()
            await conn.commit()
            if not got:
                raise await _database_in_use(conn)
            if record:
                await _record_owner(conn, info)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def advertise(self, info: OwnerInfo) -> None:
        if self._conn is not None:
            await _record_owner(self._conn, info)

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # a dead connection already released the lock
            await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_OWNER_KEY})
            await conn.commit()
        await conn.close()


async def _record_owner(conn: AsyncConnection, info: OwnerInfo) -> None:
    value = orjson.dumps(asdict(info)).decode()
    where = sa.and_(kv.c.namespace == "penguin", kv.c.key == "owner")
    await conn.execute(sa.delete(kv).where(where))
    await conn.execute(sa.insert(kv).values(namespace="penguin", key="owner", value=value))
    await conn.commit()


async def _database_in_use(conn: AsyncConnection) -> DataDirInUse:
    owner: OwnerInfo | None = None
    with contextlib.suppress(Exception):  # the owner may not have written its record yet
        raw = (
            await conn.execute(sa.select(kv.c.value).where(kv.c.namespace == "penguin", kv.c.key == "owner"))
        ).scalar()
        if raw:
            owner = _owner_from(orjson.loads(raw))
    who = owner.describe() if owner is not None else "another Penguin process"
    return DataDirInUse(
        f"the PostgreSQL database is in use by {who}; several processes on one database need the "
        "distributed mode, which this release does not have yet: use one server and talk to it over HTTP",
        field="database_url",
        owner_pid=owner.pid if owner else None,
        owner_url=owner.url if owner else None,
    )


def read_owner(data_dir: Path) -> OwnerInfo | None:
    """The process that holds ``data_dir`` now, or None when nobody does.

    A holder that has not written its record yet is reported as an unnamed owner (pid 0).
    """
    path = data_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held exclusively: there is an owner, read who
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        for _ in range(50):  # the owner truncates and rewrites its record; give it a moment
            raw = os.pread(fd, 65536, 0)
            if raw:
                with contextlib.suppress(orjson.JSONDecodeError, TypeError):
                    return _owner_from(orjson.loads(raw))
            time.sleep(0.01)
        return OwnerInfo(pid=0, host="?", role="unknown")
    finally:
        os.close(fd)


def _owner_from(data: Any) -> OwnerInfo:
    fields = {k: data[k] for k in ("pid", "host", "role", "url", "version", "started_at") if k in data}
    return OwnerInfo(**fields)


def _in_use(data_dir: Path, owner: OwnerInfo | None) -> DataDirInUse:
    who = owner.describe() if owner is not None else "another process"
    hint = (
        f"talk to it over HTTP (penguin --url {owner.url} ..., PenguinClient({owner.url!r}))"
        if owner is not None and owner.url
        else "stop it, or use another PENGUIN_DATA_DIR"
    )
    return DataDirInUse(
        f"the data directory {str(data_dir.resolve())!r} is in use by {who}; {hint}",
        field="data_dir",
        owner_pid=owner.pid if owner else None,
        owner_url=owner.url if owner else None,
    )


__all__ = ["LOCK_NAME", "DataDirLock", "DatabaseLock", "OwnerInfo", "read_owner"]
