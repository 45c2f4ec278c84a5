"""Per-command cgroups: a ceiling on the processes and memory of one shell command, and a sweep that kills them all.

Why cgroups when there are rlimits: the kernel does not enforce ``RLIMIT_NPROC`` on the root
user, and a sandbox started by root runs as root's kernel uid even behind a user namespace, so
a fork bomb started by a Penguin running as root (as in containers and CI) is stopped only by a
``pids`` cgroup. A cgroup also holds every process the command started, wherever it went (a new
session, a double fork), so the sweep at the end of a command misses none.

Both cgroup versions are handled. Version 1 mounts a hierarchy per controller; version 2 mounts
one, where a controller must be enabled in the parent's ``cgroup.subtree_control``. Penguin only
creates children of its own cgroup, and only where it may write; ``Cgroups.discover`` tries one
child per hierarchy and keeps the hierarchies where that worked. Nothing found is not an error
here: the sandbox decides whether it can run without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger("penguin.security")

#: Controllers the sandbox uses.
CONTROLLERS = ("pids", "memory")
#: Seconds a sweep keeps killing and waiting for a command's cgroup to empty.
SWEEP_SECONDS = 5.0

_LIMIT_FILE = {
    (1, "pids"): "pids.max",
    (2, "pids"): "pids.max",
    (1, "memory"): "memory.limit_in_bytes",
    (2, "memory"): "memory.max",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Hierarchy:
    """One mounted cgroup hierarchy where Penguin may create children."""

    version: Literal[1, 2]
    #: Penguin's own cgroup in this hierarchy; each command gets a child directory of it.
    parent: Path
    #: The wanted controllers (``CONTROLLERS``) this hierarchy limits.
    controllers: frozenset[str]


def _mounts(mountinfo: str) -> list[tuple[str, Path, str, set[str]]]:
    """(root, mount point, fstype, super options) of every cgroup mount in ``/proc/self/mountinfo``."""
    out = []
    for line in mountinfo.splitlines():
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if len(fields) >= 5 and len(rest) >= 3 and rest[0] in ("cgroup", "cgroup2"):
            out.append((fields[3], Path(fields[4]), rest[0], set(rest[2].split(","))))
    return out


def _locate(mount_root: str, mount_point: Path, path: str) -> Path | None:
    """The directory of cgroup ``path`` under a mount whose root is ``mount_root``."""
    if mount_root != "/" and path != mount_root and not path.startswith(mount_root.rstrip("/") + "/"):
        return None
    rel = path[len(mount_root):] if mount_root != "/" else path
    return mount_point / rel.lstrip("/")


def find_hierarchies(proc: Path = Path("/proc/self")) -> list[Hierarchy]:
    """The hierarchies holding this process that have a wanted controller (not yet checked for writing)."""
    try:
        membership = (proc / "cgroup").read_text()
        mounts = _mounts((proc / "mountinfo").read_text())
    except OSError:
        return []
    found: list[Hierarchy] = []
    for line in membership.splitlines():
        _, names, path = line.split(":", 2)
        if names:  # version 1: "id:pids:/path" (possibly several controllers, comma-separated)
            wanted = frozenset(names.split(",")) & set(CONTROLLERS)
            for root, point, fstype, options in mounts:
                if fstype == "cgroup" and wanted and wanted <= options:
                    where = _locate(root, point, path)
                    if where is not None:
                        found.append(Hierarchy(version=1, parent=where, controllers=wanted))
                    break
        else:  # version 2: "0::/path"
            for root, point, fstype, _ in mounts:
                if fstype != "cgroup2":
                    continue
                where = _locate(root, point, path)
                if where is None:
                    continue
                with contextlib.suppress(OSError):
                    enabled = set((where / "cgroup.subtree_control").read_text().split())
                    wanted = frozenset(enabled & set(CONTROLLERS))
                    if wanted:
                        found.append(Hierarchy(version=2, parent=where, controllers=wanted))
                break
    return found


def _remove_stale(parent: Path) -> None:
    with contextlib.suppress(OSError):
        for child in parent.glob("penguin-shell-*-*"):
            owner = child.name.split("-")[2]
            if owner.isdigit() and not Path("/proc", owner).exists():
                with contextlib.suppress(OSError):
                    child.rmdir()  # fails, and is left alone, while a process is still inside


class CgroupLease:
    """The cgroups of one command: the launcher joins them, ``release`` empties and removes them."""

    def __init__(self, dirs: Sequence[tuple[Hierarchy, Path]]) -> None:
        self._dirs = tuple(dirs)

    @property
    def procs_files(self) -> list[str]:
        """The ``cgroup.procs`` files a process writes its pid to, to join every cgroup of the lease."""
        return [str(path / "cgroup.procs") for _, path in self._dirs]

    def pids(self) -> set[int]:
        """Every process now in the lease's cgroups."""
        out: set[int] = set()
        for _, path in self._dirs:
            with contextlib.suppress(OSError):
                out.update(int(p) for p in (path / "cgroup.procs").read_text().split())
        return out

    async def release(self) -> None:
        """Kill every process in the cgroups, wait for them to go, and remove the directories."""
        deadline = time.monotonic() + SWEEP_SECONDS
        remaining = list(self._dirs)
        while remaining:
            for hierarchy, path in remaining:
                kill = path / "cgroup.kill"
                if hierarchy.version == 2 and kill.exists():
                    with contextlib.suppress(OSError):
                        kill.write_text("1")
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            still = []
            for hierarchy, path in remaining:
                try:
                    path.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:  # EBUSY: a killed process has not left yet
                    still.append((hierarchy, path))
            remaining = still
            if remaining:
                if time.monotonic() > deadline:
                    log.warning("cgroups %s still hold processes after %ss; left in place",
                                [str(p) for _, p in remaining], SWEEP_SECONDS)
                    return
                await asyncio.sleep(0.01)


class Cgroups:
    """Makes one ``CgroupLease`` per command in the hierarchies Penguin may write.

    Args:
        hierarchies: where to create the commands' cgroups (``discover`` finds them).
    """

    def __init__(self, hierarchies: Sequence[Hierarchy]) -> None:
        self.hierarchies = tuple(hierarchies)

    @classmethod
    def discover(cls) -> Cgroups:
        """The hierarchies of this process where a child cgroup can be created (tried once each).

        Empty command cgroups left by a Penguin process that no longer runs (one killed with a
        command running: the kernel killed the command, nobody removed its directory) are removed.
        """
        usable = []
        for hierarchy in find_hierarchies():
            _remove_stale(hierarchy.parent)
            probe = hierarchy.parent / f"penguin-probe-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            try:
                probe.mkdir()
            except OSError:
                continue
            try:
                if all((probe / _LIMIT_FILE[(hierarchy.version, c)]).exists() for c in hierarchy.controllers):
                    usable.append(hierarchy)
            finally:
                with contextlib.suppress(OSError):
                    probe.rmdir()
        return cls(usable)

    @property
    def controllers(self) -> frozenset[str]:
        """The controllers available for commands (a subset of ``CONTROLLERS``)."""
        return frozenset().union(*(h.controllers for h in self.hierarchies))

    def lease(self, *, max_processes: int, memory_bytes: int) -> CgroupLease:
        """Create one command's cgroups with these limits.

        Raises:
            OSError: a directory or limit could not be written (the partial lease is removed).
        """
        # Unique across the cores of one process and the processes of one machine.
        name = f"penguin-shell-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        made: list[tuple[Hierarchy, Path]] = []
        limits = {"pids": str(max_processes), "memory": str(memory_bytes)}
        try:
            for hierarchy in self.hierarchies:
                path = hierarchy.parent / name
                path.mkdir()
                made.append((hierarchy, path))
                for controller in sorted(hierarchy.controllers):
                    (path / _LIMIT_FILE[(hierarchy.version, controller)]).write_text(limits[controller])
                swap = path / "memory.swap.max"
                if "memory" in hierarchy.controllers and hierarchy.version == 2 and swap.exists():
                    swap.write_text("0")
        except OSError:
            for _, path in made:
                with contextlib.suppress(OSError):
                    path.rmdir()
            raise
        return CgroupLease(made)
