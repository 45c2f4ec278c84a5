"""An exclusive lock between processes (and threads) on one file: ``fcntl.flock``.

The kernel releases the lock when its holder closes the file or dies, so a crashed holder never
leaves a stale lock behind, and there is nothing to time out. The lock file itself stays: deleting
it while another process waits on it would let a third process lock a new file of the same name.
Each ``exclusive`` opens its own file description, so two threads of one process exclude each
other as two processes do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(path: Path, *, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    Args:
        path: the lock file.
        on_wait: called once, before blocking, when another holder has the lock.

    Raises:
        OSError: the lock file cannot be created or opened (e.g. a read-only directory).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
