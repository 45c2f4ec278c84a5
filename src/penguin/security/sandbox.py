"""``ShellSandbox``: where ``run_shell`` commands run, confined by bubblewrap, rlimits and cgroups.

With ``shell_sandbox = "required"`` (the default) every command runs under bubblewrap
(``bwrap``, Debian's ``bubblewrap``) in new user, PID, IPC, UTS, cgroup and network namespaces,
as uid 1000 with no capabilities and no way to create further user namespaces. It sees:

* ``/usr``, ``/etc`` and the ``/bin``, ``/lib``... links, read-only, with the password hashes,
  sudo rules and host keys of ``/etc`` masked; any ``shell_read_only_paths``, read-only;
* the workspace, read-write, at its own path (its working directory and ``$HOME``);
* a ``/tmp`` of its own (a tmpfs of ``tmp_bytes``), a ``/proc`` showing only its own processes,
  and a minimal ``/dev``;
* nothing else: no data directory (masked even when it lies inside a visible tree), no
  ``/home`` or ``/root``, no ``/run``, ``/var``, ``/sys``, no other mount;
* a network namespace holding only its own loopback, unless the agent's
  ``tool_policy.shell_network`` is true;
* an environment of PATH, HOME, PWD, TMPDIR, LANG, LC_ALL and TERM only. bwrap itself starts
  with that environment, so no process the command can see (its PID 1 included) holds more.

Limits: ``prlimit`` sets RLIMIT_CPU, RLIMIT_DATA (memory), RLIMIT_FSIZE, RLIMIT_NPROC and no
core files on the command; where Penguin can write a cgroup, the command also gets ``pids.max``
and a memory ceiling for all its processes together (``penguin.security.cgroups``). The kernel
does not apply RLIMIT_NPROC to root, so a Penguin running as root needs that cgroup: without one
the sandbox reports itself unavailable rather than run without a process limit.

Ending: the command's PID namespace dies with its first process, and the kernel kills every
process left in it (background jobs, ``setsid``, double forks); ``--die-with-parent`` ties the
sandbox to Penguin's life; the cgroup sweep catches anything else. ``run`` ends all of that when
its block exits (normally, on timeout or on cancellation), and ``aclose`` (``core.stop()``)
ends every command still running.

With ``shell_sandbox = "off"`` commands run unconfined, as the Penguin user, with the same
environment, limits, session and cgroup: a deliberate choice for machines without namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from penguin.config import Settings
from penguin.errors import SandboxUnavailable
from penguin.security.cgroups import CgroupLease, Cgroups

log = logging.getLogger("penguin.security")

SandboxMode = Literal["required", "off"]

#: The uid and gid a sandboxed command runs as (mapped to Penguin's own user outside).
SANDBOX_UID = 1000
#: PATH inside the sandbox (only ``/usr`` and its links exist there).
SANDBOX_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: Files of ``/etc`` that hold secrets: each is replaced by an unreadable node when it exists.
ETC_SECRET_FILES = (
    "/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd",
    "/etc/sudoers", "/etc/ssh/ssh_host_*key",
)
#: Directories of ``/etc`` that hold secrets: each is replaced by an empty read-only directory.
ETC_SECRET_DIRS = ("/etc/ssl/private", "/etc/sudoers.d")
#: Seconds the availability probe may take.
PROBE_TIMEOUT = 15.0

# Joins the command's cgroups, then becomes the sandbox: ``sh -c JOIN penguin-cgroup FILE... -- ARGV``.
_JOIN_CGROUPS = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxLimits:
    """Resource limits of one ``run_shell`` command (settings ``shell_*``)."""

    #: CPU seconds each process may use (RLIMIT_CPU).
    cpu_seconds: int = 60
    #: Bytes of memory: for all the command's processes together when a memory cgroup is
    #: available, and for each process's data (RLIMIT_DATA) always.
    memory_bytes: int = 1024**3
    #: Processes (and threads) the command may have at once.
    max_processes: int = 128
    #: Largest file the command may write (RLIMIT_FSIZE).
    max_file_bytes: int = 1024**3
    #: Size of the command's private ``/tmp`` (a tmpfs).
    tmp_bytes: int = 256 * 1024**2


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxStatus:
    """What the sandbox can do on this machine, found by one probe."""

    mode: SandboxMode
    #: Commands may run (confined when ``mode`` is ``required``, unconfined when ``off``).
    available: bool
    #: What confines a command, or why none can run; says how to fix it.
    detail: str
    #: Limits that a cgroup enforces for the whole command (``pids``, ``memory``).
    cgroup_controllers: frozenset[str] = frozenset()


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


class ShellSandbox:
    """Runs shell commands confined to the workspace. One per core.

    Args:
        workspace: the directory commands read and write (their cwd and ``$HOME``).
        hidden: directories a command must never see (the data directory), masked even when
            they lie inside the workspace or another visible tree.
        read_only: extra host paths shown read-only at their own place (e.g. a toolchain in ``/opt``).
        limits: resource limits per command.
        mode: ``required`` confines every command and refuses to run without bubblewrap;
            ``off`` runs commands unconfined.
        bwrap: the bubblewrap executable, found on ``PATH`` when the sandbox is first used.
        cgroups: where commands get their cgroups (default: ``Cgroups.discover()`` at first use).
    """

    def __init__(
        self,
        *,
        workspace: Path,
        hidden: Sequence[Path] = (),
        read_only: Sequence[Path] = (),
        limits: SandboxLimits | None = None,
        mode: SandboxMode = "required",
        bwrap: str = "bwrap",
        cgroups: Cgroups | None = None,
    ) -> None:
        self.workspace = Path(os.path.realpath(workspace))
        self.hidden = tuple(Path(os.path.realpath(p)) for p in hidden)
        self.read_only = tuple(Path(os.path.realpath(p)) for p in read_only)
        self.limits = limits or SandboxLimits()
        self.mode: SandboxMode = mode
        self._bwrap_name = bwrap
        self._bwrap: str | None = None
        self._prlimit: str | None = None
        self._given_cgroups = cgroups
        self._cgroups = Cgroups(())
        self._status: SandboxStatus | None = None
        self._probing = asyncio.Lock()
        self._live: set[_Command] = set()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, *, workspace: Path) -> ShellSandbox:
        """The sandbox ``settings`` configure (``shell_*``), hiding the data directory."""
        return cls(
            workspace=workspace,
            hidden=(settings.data_dir,),
            read_only=settings.shell_read_only_paths,
            limits=SandboxLimits(
                cpu_seconds=settings.shell_cpu_seconds, memory_bytes=settings.shell_memory_bytes,
                max_processes=settings.shell_max_processes, max_file_bytes=settings.shell_max_file_bytes,
                tmp_bytes=settings.shell_tmp_bytes,
            ),
            mode=settings.shell_sandbox,
        )

    # Availability ------------------------------------------------------------------------------

    async def status(self) -> SandboxStatus:
        """Probe once (find bwrap, prlimit and cgroups, run one empty sandbox) and remember the answer."""
        async with self._probing:
            if self._status is None:
                self._status = await self._probe()
                level = logging.INFO if self._status.available and self.mode == "required" else logging.WARNING
                log.log(level, "shell sandbox: %s", self._status.detail)
            return self._status

    async def require(self) -> None:
        """Return when commands may run.

        Raises:
            SandboxUnavailable: ``mode`` is ``required`` and no sandbox can be built here (the
                detail says why and how to fix it).
        """
        status = await self.status()
        if not status.available:
            raise SandboxUnavailable(status.detail, field="tool_policy.shell")

    async def _probe(self) -> SandboxStatus:
        given = self._given_cgroups
        self._cgroups = given if given is not None else await asyncio.to_thread(Cgroups.discover)
        controllers = self._cgroups.controllers
        limited_by = ("; cgroup " + ", ".join(sorted(controllers))) if controllers else ""
        self._prlimit = shutil.which("prlimit", path="/usr/bin:/bin")
        if self._prlimit is None:
            return self._refused("prlimit (util-linux) was not found in /usr/bin", controllers)
        if self.mode == "off":
            return SandboxStatus(
                mode="off", available=True, cgroup_controllers=controllers,
                detail="shell_sandbox = off: commands run unconfined as the Penguin user, with rlimits"
                + limited_by,
            )
        if self.workspace in self.hidden:
            return self._refused(f"the workspace {self.workspace} is the data directory itself; set "
                                 "workspace_dir to a directory of its own", controllers)
        self._bwrap = shutil.which(self._bwrap_name)
        if self._bwrap is None:
            return self._refused(f"bubblewrap ({self._bwrap_name!r}) is not installed; install it "
                                 "(apt-get install bubblewrap)", controllers)
        if os.geteuid() == 0 and "pids" not in controllers:
            return self._refused(
                "Penguin runs as root, where the kernel does not enforce the process limit (RLIMIT_NPROC), and "
                "no writable cgroup with the pids controller was found; run Penguin as another user or give it "
                "a writable cgroup", controllers)
        failure = await self._try_empty_sandbox()
        if failure is not None:
            return self._refused(f"bubblewrap cannot create a sandbox here: {failure}", controllers)
        return SandboxStatus(
            mode="required", available=True, cgroup_controllers=controllers,
            detail=f"bubblewrap ({self._bwrap}): user, pid, ipc, uts, cgroup and net namespaces; rlimits"
            + limited_by,
        )

    def _refused(self, why: str, controllers: frozenset[str]) -> SandboxStatus:
        return SandboxStatus(
            mode=self.mode, available=False, cgroup_controllers=controllers,
            detail=f"run_shell cannot be enabled: {why}. Or set shell_sandbox = \"off\" (PENGUIN_SHELL_SANDBOX=off) "
            "to run commands unconfined",
        )

    async def _try_empty_sandbox(self) -> str | None:
        """Run ``true`` in a sandbox; None when it worked, else bwrap's complaint."""
        proc = await asyncio.create_subprocess_exec(
            *self._sandbox_argv("true", network=False), env=self._environment(), cwd="/",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                out, _ = await proc.communicate()
        except TimeoutError:
            return f"a sandboxed 'true' did not finish in {PROBE_TIMEOUT:g}s"
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                await proc.wait()
        if proc.returncode != 0:
            return out.decode("utf-8", "replace").strip() or f"exit code {proc.returncode}"
        return None

    # Running -----------------------------------------------------------------------------------

    @asynccontextmanager
    async def run(self, command: str, *, network: bool = False) -> AsyncIterator[asyncio.subprocess.Process]:
        """Start ``command`` (``sh -c``); stdout and stderr combined on ``stdout``, stdin empty.

        When the block exits, by any route, every process the command started is killed and
        its cgroups are removed.

        Args:
            command: the shell command line.
            network: give the command the host's network (the agent's ``tool_policy.shell_network``).

        Raises:
            SandboxUnavailable: no sandbox can be built here (see ``require``), or the sandbox is closed.
        """
        await self.require()
        if self._closed:
            raise SandboxUnavailable("the shell sandbox is closed: Penguin is stopping")
        # A few writes to cgroupfs, made here rather than in a thread: a cancellation can then
        # never leave a lease that nobody releases.
        lease = (
            self._cgroups.lease(max_processes=self.limits.max_processes, memory_bytes=self.limits.memory_bytes)
            if self._cgroups.hierarchies else None
        )
        argv = self._sandbox_argv(command, network=network) if self.mode == "required" else self._limited(command)
        if lease is not None:
            argv = ["/bin/sh", "-c", _JOIN_CGROUPS, "penguin-cgroup", *lease.procs_files, "--", *argv]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=self.workspace, env=self._environment(),
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            if lease is not None:
                await lease.release()
            raise
        live = _Command(proc, lease)
        self._live.add(live)
        try:
            yield proc
        finally:
            self._live.discard(live)
            await live.end()

    async def aclose(self) -> None:
        """Kill every command still running and refuse new ones (``core.stop()``)."""
        self._closed = True
        await asyncio.gather(*(live.end() for live in list(self._live)))

    # Command lines -----------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        confined = self.mode == "required"
        return {
            "PATH": SANDBOX_PATH if confined else os.environ.get("PATH", SANDBOX_PATH),
            "HOME": str(self.workspace),
            "PWD": str(self.workspace),
            "TMPDIR": "/tmp" if confined else os.environ.get("TMPDIR", "/tmp"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TERM": "dumb",
        }

    def _limited(self, command: str) -> list[str]:
        """``prlimit ... -- /bin/sh -c command``."""
        bounds = self.limits
        # Unconfined, RLIMIT_NPROC would count every process of the Penguin user, Penguin's own
        # threads included; in the sandbox's user namespace it counts the command's processes only.
        nproc = [f"--nproc={bounds.max_processes}"] if self.mode == "required" else []
        # The hard CPU limit is a second above the soft one: SIGXCPU first (which a program may
        # catch to clean up), SIGKILL after.
        return [
            self._prlimit or "prlimit", f"--cpu={bounds.cpu_seconds}:{bounds.cpu_seconds + 1}",
            f"--data={bounds.memory_bytes}",
            f"--fsize={bounds.max_file_bytes}", *nproc, "--core=0", "--", "/bin/sh", "-c", command,
        ]

    def _sandbox_argv(self, command: str, *, network: bool) -> list[str]:
        argv = [
            self._bwrap or self._bwrap_name,
            "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--disable-userns",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            *(() if network else ("--unshare-net",)),
            "--hostname", "penguin-sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--clearenv", *(x for k, v in self._environment().items() for x in ("--setenv", k, v)),
        ]
        mounts: list[tuple[Path, list[str]]] = [(Path("/usr"), ["--ro-bind", "/usr", "/usr"])]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            top = Path("/", name)
            if top.is_symlink():
                mounts.append((top, ["--symlink", os.readlink(top), str(top)]))
            elif top.is_dir():
                mounts.append((top, ["--ro-bind", str(top), str(top)]))
        mounts.append((Path("/etc"), ["--ro-bind", "/etc", "/etc"]))
        for pattern in ETC_SECRET_FILES:
            mounts.extend((Path(f), ["--ro-bind", "/dev/null", f]) for f in sorted(glob.glob(pattern)))
        masked = [Path(d) for d in ETC_SECRET_DIRS if os.path.isdir(d)]
        if network and os.path.islink("/etc/resolv.conf"):
            # A resolver file that is a link (systemd-resolved's, under /run) must exist at its target.
            target = os.path.realpath("/etc/resolv.conf")
            mounts.append((Path(target), ["--ro-bind-try", target, target]))
        mounts += [
            (Path("/proc"), ["--proc", "/proc"]),
            (Path("/dev"), ["--dev", "/dev"]),
            (Path("/tmp"), ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]),
            (self.workspace, ["--bind", str(self.workspace), str(self.workspace)]),
        ]
        mounts.extend((p, ["--ro-bind", str(p), str(p)]) for p in self.read_only if p.exists())
        visible = [Path("/usr"), Path("/etc"), self.workspace, *self.read_only]
        masked += [h for h in self.hidden if h.is_dir() and _under(h, visible)]
        mounts.extend((m, ["--tmpfs", str(m)]) for m in masked)
        # bwrap mounts in order; deeper paths after shallower ones, so a mask or bind inside a
        # tree lands on top of it, whichever of the two is the workspace. Masks turn read-only
        # only after every mount, as a bind inside one needs its mount point made first.
        mounts.sort(key=lambda m: len(m[0].parts))
        for _, op in mounts:
            argv += op
        for m in masked:
            argv += ["--remount-ro", str(m)]
        # The root itself (bwrap's tmpfs holding the mount points) is read-only too, so a write
        # outside the workspace and /tmp fails instead of landing in a throwaway directory.
        argv += ["--remount-ro", "/", "--chdir", str(self.workspace), "--", *self._limited(command)]
        return argv


class _Command:
    """One running command and the cgroups that hold it; ``end`` kills it all, once."""

    def __init__(self, proc: asyncio.subprocess.Process, lease: CgroupLease | None) -> None:
        self.proc = proc
        self.lease = lease
        self._ending: asyncio.Future[None] | None = None

    async def end(self) -> None:
        # Shielded and shared: a cancelled caller must not leave processes behind, and a second
        # caller (``aclose`` while the tool's own block exits) waits for the same sweep.
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._kill())
        await asyncio.shield(self._ending)

    async def _kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()
        if self.lease is not None:
            await self.lease.release()
