"""Per-command cgroups: finding where Penguin may create them, and sweeping one empty."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from penguin.security.cgroups import Cgroups, Hierarchy, find_hierarchies

V1_CGROUP = """12:pids:/docker/abc
11:memory:/docker/abc
4:cpu,cpuacct:/docker/abc
1:name=systemd:/docker/abc
0::/docker/abc
"""
V1_MOUNTINFO = """31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
39 31 0:36 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
40 31 0:37 /docker/abc /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
"""
V2_CGROUP = "0::/user.slice/penguin.service\n"
V2_MOUNTINFO = "29 23 0:26 / {root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def proc_files(tmp_path: Path, cgroup: str, mountinfo: str) -> Path:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text(mountinfo)
    return proc


def test_version_1_has_a_hierarchy_per_controller(tmp_path: Path) -> None:
    # The container sees its own cgroup as the mount's root.
    assert find_hierarchies(proc_files(tmp_path, V1_CGROUP, V1_MOUNTINFO)) == [
        Hierarchy(version=1, parent=Path("/sys/fs/cgroup/pids"), controllers=frozenset({"pids"})),
        Hierarchy(version=1, parent=Path("/sys/fs/cgroup/memory"), controllers=frozenset({"memory"})),
    ]


def test_version_2_needs_the_controllers_enabled_for_children(tmp_path: Path) -> None:
    root = tmp_path / "unified"
    own = root / "user.slice" / "penguin.service"
    own.mkdir(parents=True)
    proc = proc_files(tmp_path, V2_CGROUP, V2_MOUNTINFO.format(root=root))
    (own / "cgroup.subtree_control").write_text("cpu io\n")
    assert find_hierarchies(proc) == []
    (own / "cgroup.subtree_control").write_text("cpu memory pids\n")
    assert find_hierarchies(proc) == [
        Hierarchy(version=2, parent=own, controllers=frozenset({"pids", "memory"}))
    ]


def test_no_proc_means_no_cgroups(tmp_path: Path) -> None:
    assert find_hierarchies(tmp_path / "nothing") == []


async def test_a_lease_limits_its_processes_and_its_release_kills_them() -> None:
    cgroups = Cgroups.discover()  # writable here and in CI, where the tests run as root
    assert "pids" in cgroups.controllers
    lease = cgroups.lease(max_processes=3, memory_bytes=64 * 1024**2)
    procs = lease.procs_files
    # A shell joins the lease, then forks past its limit: the third process is refused (and dash gives up).
    script = (f'for f in {" ".join(procs)}; do echo $$ > "$f"; done; '
              "for i in 1 2 3; do sleep 900 >/dev/null 2>&1 & done; wait")
    try:
        proc = await asyncio.create_subprocess_exec("/bin/sh", "-c", script, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        async with asyncio.timeout(10):
            out, _ = await proc.communicate()
        assert b"Cannot fork" in out, out
        sleepers = lease.pids()
        assert len(sleepers) == 2 and all(_command(pid) == "sleep 900" for pid in sleepers)
    finally:
        await lease.release()
    assert not any(_command(pid) for pid in sleepers)
    assert not any(map(os.path.exists, procs))


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_discovery_removes_the_empty_cgroups_of_dead_penguins() -> None:
    parents = [h.parent for h in Cgroups.discover().hierarchies]
    dead = [p / "penguin-shell-99999999-left-by-a-killed-server" for p in parents]
    ours = [p / f"penguin-shell-{os.getpid()}-in-use" for p in parents]
    for path in (*dead, *ours):
        path.mkdir()
    try:
        Cgroups.discover()
        assert not any(map(os.path.exists, dead)) and all(map(os.path.exists, ours))
    finally:
        for path in (*dead, *ours):
            if os.path.exists(path):
                path.rmdir()
