"""A tiny MCP server for the tests, built with the ``mcp`` SDK's own server API (``MCPServer``).

Run ``python mcp_demo_server.py`` for stdio, or ``python mcp_demo_server.py http PORT`` for
streamable HTTP on 127.0.0.1:PORT (path ``/mcp``).
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

app = MCPServer("demo", log_level="ERROR")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool(name="shout.loud")
def shout(text: str) -> str:
    """Upper-case a text (its name has a dot, which Penguin must namespace safely)."""
    return text.upper()


@app.tool()
def fail(reason: str) -> str:
    """Always fails with the given reason (a deliberate tool error, so the reason reaches the client)."""
    raise ToolError(reason)


@app.tool()
async def slow(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@app.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@app.tool()
def crash() -> str:
    """Exit the server process at once."""
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "http":
        app.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        app.run()
