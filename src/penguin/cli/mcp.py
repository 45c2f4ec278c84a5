"""``penguin mcp``: Penguin as an MCP server on stdin/stdout, for MCP clients that start a command.

Like every CLI command it respects the folder's owner: when ``penguin serve`` owns the data
directory (or ``--url`` / ``PENGUIN_URL`` names a server) the tools are calls to that server;
otherwise this process runs its own core on the folder for as long as the client keeps it open.
Standard output belongs to the protocol, so nothing else is printed there.
"""

from __future__ import annotations

import asyncio

from penguin.cli.backend import server_url
from penguin.config import Settings
from penguin.interop.mcp_server import ClientOperations, CoreOperations, serve_stdio


async def _run(url: str | None, settings: Settings) -> None:
    remote = server_url(url, settings)
    if remote is not None:
        from penguin.api_client import PenguinClient

        async with PenguinClient(remote, api_key=settings.api_key, timeout=600) as client:
            await serve_stdio(ClientOperations(client))
        return
    from penguin.core import PenguinCore

    async with PenguinCore(settings) as core:
        await serve_stdio(CoreOperations(core))


def run(url: str | None, settings: Settings) -> None:
    """Serve MCP over stdio until the client closes stdin.

    Raises:
        DataDirInUse: the folder is owned by a process that serves no API.
    """
    asyncio.run(_run(url, settings))


__all__ = ["run"]
