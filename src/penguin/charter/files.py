"""``CharterFiles``: the charter's home in the shared workspace, ``context/TASK_CHARTER.md`` + ``.json``.

Both files are written on every save (Markdown for people and models, JSON for programs); on load
the Markdown file wins when both exist, because that is the one people edit by hand. Reads and
writes go through the core's ``Workspace`` (sandboxed, atomic rename), in a worker thread so the
event loop never waits on the disk. One ``asyncio.Lock`` serialises read-modify-write cycles of
the tools and the workflow inside this process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson

from penguin.charter.markdown import parse, render
from penguin.charter.model import Charter
from penguin.errors import NotFound, ToolError, ValidationFailed
from penguin.tools.sandbox import Workspace

MARKDOWN_PATH = "context/TASK_CHARTER.md"
JSON_PATH = "context/TASK_CHARTER.json"


def to_json(charter: Charter) -> str:
    return orjson.dumps(charter.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n"


def from_json(text: str) -> Charter:
    """Parse ``TASK_CHARTER.json`` text. Raises ValidationFailed."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"TASK_CHARTER.json is not valid JSON: {exc}", field="charter") from None
    return Charter.from_dict(data)


class CharterFiles:
    """Loads and saves the workspace charter.

    Args:
        workspace: the core's sandboxed workspace.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._lock = asyncio.Lock()

    def _read(self, path: str) -> str | None:
        try:
            return self.workspace.read_text(path)
        except ToolError as exc:
            if exc.detail.startswith(("no such file", "no such directory")):
                return None
            raise

    def _load_sync(self) -> Charter | None:
        text = self._read(MARKDOWN_PATH)
        if text is not None:
            return parse(text)
        text = self._read(JSON_PATH)
        return from_json(text) if text is not None else None

    def _save_sync(self, charter: Charter) -> None:
        self.workspace.write_bytes(JSON_PATH, to_json(charter).encode())
        self.workspace.write_bytes(MARKDOWN_PATH, render(charter).encode())

    async def load(self) -> Charter | None:
        """The stored charter, or None when neither file exists. Raises ValidationFailed if malformed."""
        return await asyncio.to_thread(self._load_sync)

    async def get(self) -> Charter:
        """The stored charter. Raises NotFound when there is none."""
        charter = await self.load()
        if charter is None:
            raise NotFound(f"no charter: write {MARKDOWN_PATH} in the workspace (or run a charter workflow)",
                           field="charter")
        return charter

    async def save(self, charter: Charter) -> Charter:
        async with self._lock:
            await asyncio.to_thread(self._save_sync, charter)
        return charter

    async def update(self, change: Callable[[Charter | None], Charter | Awaitable[Charter]]) -> Charter:
        """Load, apply ``change`` and save as one step with respect to other updates in this process."""
        async with self._lock:
            current = await asyncio.to_thread(self._load_sync)
            out = change(current)
            new = await out if isinstance(out, Awaitable) else out
            await asyncio.to_thread(self._save_sync, new)
        return new


__all__ = ["JSON_PATH", "MARKDOWN_PATH", "CharterFiles", "from_json", "to_json"]
