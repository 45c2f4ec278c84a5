"""``run_shell``: one shell command in the workspace directory, bounded in time and output.

The tool is off unless an agent's ``ToolPolicy.shell`` is true (the registry hides it otherwise).
It is not a filesystem sandbox: a shell can reach anything the Penguin process can, which is why
it is opt-in per agent. What it does guarantee is that the event loop never blocks on it (an
asyncio subprocess), that output beyond the cap is drained and dropped instead of filling memory,
and that a command which runs past its timeout, or whose call is cancelled, is killed together
with every process it started (it runs in its own session, so the whole process group goes).
The command sees a minimal environment: Penguin's own variables (API keys) are not passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

from penguin.errors import ToolError
from penguin.tools.base import Tool, tool_from_function
from penguin.tools.sandbox import Workspace

_READ_CHUNK = 65_536


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellLimits:
    """Bounds of one ``run_shell`` call."""

    #: Seconds a command may run before it is killed (a call may ask for less, never more).
    timeout: float = 30.0
    #: Bytes of combined stdout/stderr kept; the rest is read and dropped.
    max_output_bytes: int = 65_536


def shell_environment(workspace: Workspace) -> dict[str, str]:
    """The environment a command runs with: a PATH, a UTF-8 locale, and HOME = the workspace."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(workspace.root),
        "PWD": str(workspace.root),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
    }


async def _drain(stream: asyncio.StreamReader, keep: bytearray, cap: int) -> bool:
    """Read ``stream`` to EOF, keeping the first ``cap`` bytes; return True when some were dropped."""
    dropped = False
    while chunk := await stream.read(_READ_CHUNK):
        room = cap - len(keep)
        if room > 0:
            keep += chunk[:room]
        if len(chunk) > room:
            dropped = True
    return dropped


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _render(code: int | None, output: bytearray, dropped: bool) -> str:
    text = output.decode("utf-8", errors="replace")
    if dropped:
        text += f"\n[output truncated at {len(output)} bytes]"
    return f"exit code: {code}\n{text}"


def shell_tool(workspace: Workspace, limits: ShellLimits | None = None) -> Tool:
    """Build the ``run_shell`` tool bound to ``workspace``."""
    bounds = limits or ShellLimits()

    async def run_shell(command: str, timeout: float | None = None) -> str:
        """Run a shell command (sh -c) in the workspace directory and return its exit code and output.

        stdout and stderr are combined. ``timeout`` (seconds) may shorten the default limit, never
        extend it; a command still running at the limit is killed with everything it started.
        """
        if not command.strip():
            raise ToolError("command must not be empty")
        if timeout is not None and timeout <= 0:
            raise ToolError("timeout must be a positive number of seconds")
        limit = bounds.timeout if timeout is None else min(timeout, bounds.timeout)
        proc = await asyncio.create_subprocess_shell(
            command,
            cwd=workspace.root,
            env=shell_environment(workspace),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        output = bytearray()
        dropped = False
        try:
            async with asyncio.timeout(limit) as scope:
                if proc.stdout is not None:
                    dropped = await _drain(proc.stdout, output, bounds.max_output_bytes)
                code = await proc.wait()
        except TimeoutError:
            if not scope.expired():
                raise
            _kill_group(proc)
            await proc.wait()
            raise ToolError(
                f"command timed out after {limit:g}s and was killed; output so far:\n"
                + _render(None, output, dropped)
            ) from None
        finally:
            # Cancelled from outside (policy timeout, turn cancel): never leave the command running.
            if proc.returncode is None:
                _kill_group(proc)
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.shield(proc.wait())
        return _render(code, output, dropped)

    return tool_from_function(run_shell, blocking=False)
