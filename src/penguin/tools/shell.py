"""``run_shell``: one shell command in the workspace sandbox, bounded in time and output.

The tool is off unless an agent's ``ToolPolicy.shell`` is true (the registry hides it otherwise).
Where and how a command runs is the ``ShellSandbox``'s business (``penguin.security.sandbox``):
by default a bubblewrap sandbox that sees the workspace and the system's programs but not the
data directory, the home directories, other processes, the server's environment or, unless the
agent's ``tool_policy.shell_network`` says so, the network; with CPU, memory, process and
file-size limits. This module adds what belongs to the call: the event loop never blocks on the
command (an asyncio subprocess), output beyond the cap is drained and dropped instead of filling
memory, and a command that outlives its timeout, or whose call is cancelled, is killed with every
process it started (the sandbox's block ends them all).
"""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass

from penguin.errors import SandboxUnavailable, ToolDenied, ToolError
from penguin.security.sandbox import ShellSandbox
from penguin.tools.base import Tool, ToolContext, tool_from_function

_READ_CHUNK = 65_536


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellLimits:
    """Bounds of one ``run_shell`` call."""

    #: Seconds a command may run before it is killed (a call may ask for less, never more).
    timeout: float = 30.0
    #: Bytes of combined stdout/stderr kept; the rest is read and dropped.
    max_output_bytes: int = 65_536


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


def _render(code: int | None, output: bytearray, dropped: bool) -> str:
    text = output.decode("utf-8", errors="replace")
    if dropped:
        text += f"\n[output truncated at {len(output)} bytes]"
    return f"exit code: {code}\n{text}"


def shell_tool(sandbox: ShellSandbox, limits: ShellLimits | None = None) -> Tool:
    """Build the ``run_shell`` tool that runs commands in ``sandbox``."""
    bounds = limits or ShellLimits()

    async def run_shell(ctx: ToolContext, command: str, timeout: float | None = None) -> str:
        """Run a shell command (sh -c) in the workspace directory and return its exit code and output.

        stdout and stderr are combined. ``timeout`` (seconds) may shorten the default limit, never
        extend it; a command still running at the limit is killed with everything it started.
        """
        if not command.strip():
            raise ToolError("command must not be empty")
        if timeout is not None and timeout <= 0:
            raise ToolError("timeout must be a positive number of seconds")
        limit = bounds.timeout if timeout is None else min(timeout, bounds.timeout)
        output = bytearray()
        dropped = False
        code: int | None = None
        try:
            async with sandbox.run(command, network=ctx.policy.shell_network) as proc:
                try:
                    async with asyncio.timeout(limit) as scope:
                        if proc.stdout is not None:
                            dropped = await _drain(proc.stdout, output, bounds.max_output_bytes)
                        code = await proc.wait()
                except TimeoutError:
                    if not scope.expired():
                        raise
        except SandboxUnavailable as exc:
            raise ToolDenied(exc.detail, reason="sandbox") from None
        if code is None:
            raise ToolError(
                f"command timed out after {limit:g}s and was killed; output so far:\n" + _render(None, output, dropped)
            )
        return _render(code, output, dropped)

    confined = (" It runs in a sandbox: the workspace is writable, the system is read-only, nothing else of "
                "the machine is visible, and the network is off unless the agent's policy allows it.")
    description = (inspect.getdoc(run_shell) or "").split("\n\n")[0]
    return tool_from_function(
        run_shell, blocking=False, description=description + (confined if sandbox.mode == "required" else "")
    )
