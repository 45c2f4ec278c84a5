"""The built-in workspace tools: read, write, edit, list and search files, and (opt-in) a shell.

Every tool is bound to one ``Workspace`` when it is built, so a tool can only ever touch that
tree; there is no ambient "current directory". The file tools are plain functions that block on
the disk, and ``Tool.invoke`` runs them in a worker thread (``blocking=True``), so the event loop
keeps serving other agents while a file is read. ``register_builtin_tools`` is what
``PenguinCore`` calls; which agent sees which tool is the registry's and the policy's business.

``search_files`` takes a model's regular expression, so it is compiled by RE2 (linear time, see
``penguin.security.patterns``) and the search runs in a worker thread under a budget of time,
files and bytes. The thread also stops as soon as its call is abandoned (a policy timeout or a
cancelled turn): a search never outlives the call that asked for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import threading
import time

from penguin.errors import ToolError, ValidationFailed
from penguin.security.patterns import UserPattern, compile_pattern
from penguin.security.sandbox import ShellSandbox
from penguin.tools.base import Tool, tool_from_function
from penguin.tools.registry import ToolRegistry
from penguin.tools.sandbox import Workspace
from penguin.tools.shell import ShellLimits, shell_tool

#: Directories ``search_files`` does not descend into (tool caches and VCS internals).
SEARCH_SKIP_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".mypy_cache"})
#: Hard ceiling on ``search_files`` matches, whatever the call asks for.
MAX_SEARCH_RESULTS = 1000
#: A matching line is shown up to this many characters.
MAX_LINE_CHARS = 300
#: ``list_dir`` shows at most this many entries.
MAX_DIR_ENTRIES = 1000
#: One ``search_files`` call stops after this many seconds ...
SEARCH_BUDGET_SECONDS = 10.0
#: ... or files read ...
SEARCH_BUDGET_FILES = 20_000
#: ... or bytes read, whichever comes first, and says so.
SEARCH_BUDGET_BYTES = 256 * 1024 * 1024
#: Lines searched between two looks at the clock and the cancel flag.
_CHECK_EVERY_LINES = 256


def _over_budget(files: int, size: int) -> str:
    return (f"[search stopped at its budget ({SEARCH_BUDGET_SECONDS:g}s, {SEARCH_BUDGET_FILES} files, "
            f"{SEARCH_BUDGET_BYTES} bytes) after {files} files and {size} bytes; narrow the path or glob]")


def _search(
    workspace: Workspace, regex: UserPattern, path: str, glob: str | None, limit: int, stop: threading.Event
) -> str:
    """The blocking body of ``search_files``: walk, read and match until done, budget or ``stop``."""
    deadline = time.monotonic() + SEARCH_BUDGET_SECONDS
    matches: list[str] = []
    files = size = 0
    ended: str | None = None
    with contextlib.closing(workspace.iter_files(path, skip_dirs=SEARCH_SKIP_DIRS)) as found:
        for file_path, content in found:
            files += 1
            size += len(content)
            if stop.is_set():
                break
            if files > SEARCH_BUDGET_FILES or size > SEARCH_BUDGET_BYTES or time.monotonic() > deadline:
                ended = _over_budget(files - 1, size - len(content))
                break
            if glob is not None and not fnmatch.fnmatchcase(file_path.rsplit("/", 1)[-1], glob):
                continue
            if b"\x00" in content[:8192]:
                continue  # binary
            for number, line in enumerate(content.decode("utf-8", errors="replace").splitlines(), 1):
                if number % _CHECK_EVERY_LINES == 0 and (stop.is_set() or time.monotonic() > deadline):
                    ended = _over_budget(files, size)
                    break
                if regex.search(line[: MAX_LINE_CHARS * 10]):
                    if len(matches) >= limit:
                        ended = f"[stopped at {limit} matches; narrow the pattern, path or glob]"
                        break
                    matches.append(f"{file_path}:{number}: {line[:MAX_LINE_CHARS]}")
            if ended is not None:
                break
    if ended is not None:
        matches.append(ended)
    return "\n".join(matches) if matches else "no matches"


def workspace_tools(workspace: Workspace) -> list[Tool]:
    """Build the file tools bound to ``workspace``."""

    def read_file(path: str, start_line: int = 1, max_lines: int | None = None) -> str:
        """Read a UTF-8 text file from the workspace (path relative to the workspace root).

        Optionally return only ``max_lines`` lines starting at ``start_line`` (1-based).
        """
        if start_line < 1:
            raise ToolError("start_line must be 1 or more")
        if max_lines is not None and max_lines < 1:
            raise ToolError("max_lines must be 1 or more")
        text = workspace.read_text(path)
        if start_line == 1 and max_lines is None:
            return text
        lines = text.splitlines(keepends=True)
        end = None if max_lines is None else start_line - 1 + max_lines
        return "".join(lines[start_line - 1 : end])

    def write_file(path: str, content: str) -> str:
        """Create or replace a text file in the workspace; missing parent directories are created."""
        with workspace.lock(path):
            size = workspace.write_bytes(path, content.encode("utf-8"))
        return f"wrote {size} bytes to {path}"

    def edit_file(path: str, old_text: str, new_text: str, replace_all: bool = False) -> str:
        """Replace exact text in a workspace file.

        ``old_text`` must appear exactly once unless ``replace_all`` is true; include enough
        surrounding text to make it unique.
        """
        if not old_text:
            raise ToolError("old_text must not be empty; use write_file to create or replace a whole file")
        if old_text == new_text:
            raise ToolError("old_text and new_text are the same; nothing to change")
        with workspace.lock(path):
            raw = workspace.read_bytes(path)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ToolError(f"{path!r} is not UTF-8 text; edit_file only edits text files") from None
            count = text.count(old_text)
            if count == 0:
                raise ToolError(f"old_text was not found in {path!r}; read the file and copy the text exactly")
            if count > 1 and not replace_all:
                raise ToolError(
                    f"old_text appears {count} times in {path!r}; add surrounding lines to make it unique, "
                    "or set replace_all to replace every occurrence"
                )
            workspace.write_bytes(path, text.replace(old_text, new_text).encode("utf-8"))
        return f"replaced {count if replace_all else 1} occurrence(s) in {path}"

    def list_dir(path: str = ".") -> str:
        """List a workspace directory: one entry per line, directories end with '/', files show their size."""
        entries = workspace.list_dir(path, limit=MAX_DIR_ENTRIES + 1)
        lines = []
        for entry in entries[:MAX_DIR_ENTRIES]:
            if entry.kind == "dir":
                lines.append(f"{entry.name}/")
            elif entry.kind == "file":
                lines.append(f"{entry.name}  {entry.size} bytes")
            else:
                lines.append(f"{entry.name}  ({entry.kind})")
        if len(entries) > MAX_DIR_ENTRIES:
            lines.append(f"[more than {MAX_DIR_ENTRIES} entries; only the first {MAX_DIR_ENTRIES} are shown]")
        return "\n".join(lines) if lines else "(empty directory)"

    async def search_files(
        pattern: str, path: str = ".", glob: str | None = None, ignore_case: bool = False, max_results: int = 100
    ) -> str:
        """Search text files under a workspace directory for a regular expression (like grep -rn).

        Returns 'path:line: text' lines. ``glob`` filters file names (e.g. '*.py'); at most
        ``max_results`` matches are returned. Patterns use RE2 syntax (no backreferences or lookaround).
        """
        if max_results < 1:
            raise ToolError("max_results must be 1 or more")
        try:
            regex = compile_pattern(pattern, field="pattern", ignore_case=ignore_case)
        except ValidationFailed as exc:
            raise ToolError(exc.detail) from None
        stop = threading.Event()
        try:
            return await asyncio.to_thread(
                _search, workspace, regex, path, glob, min(max_results, MAX_SEARCH_RESULTS), stop
            )
        finally:
            stop.set()

    return [
        *(tool_from_function(fn, blocking=True) for fn in (read_file, write_file, edit_file, list_dir)),
        tool_from_function(search_files, blocking=False),
    ]


def register_builtin_tools(
    registry: ToolRegistry,
    workspace: Workspace,
    *,
    shell: ShellLimits | None = None,
    sandbox: ShellSandbox | None = None,
) -> list[Tool]:
    """Register the workspace file tools and ``run_shell`` (hidden unless ``ToolPolicy.shell``).

    Args:
        shell: the time and output bounds of ``run_shell``.
        sandbox: where ``run_shell`` commands run (default: a required sandbox of the workspace).

    Returns:
        The registered tools.
    """
    tools = [*workspace_tools(workspace), shell_tool(sandbox or ShellSandbox(workspace=workspace.root), shell)]
    for tool in tools:
        registry.register(tool)
    return tools
