"""MCP toolsets: Model Context Protocol servers whose tools Penguin agents can call.

``MCPManager.attach`` connects to a server (a command spoken to over stdio, or a streamable-HTTP
URL), lists its tools, and registers each one in the ``ToolRegistry`` as
``mcp__<server>__<tool>`` with the server's own input schema: for every agent, or, with
``agent_id=``, for that agent only. The calls then go through the same registry path as any
built-in, so allow/deny globs, rate limits, quotas, approvals and timeouts apply unchanged.

The ``mcp`` SDK (2.x) is anyio-based: a client's task group must be exited by the task that
entered it. So each connection is owned by one background task that enters ``mcp.Client``, reports
the tool list, and waits to be told to close; tool calls from any turn are plain requests on that
open session. A server that dies turns later calls into tool errors; it never takes a turn down.
The SDK is imported lazily, so Penguin runs without it until a server is attached.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

import orjson

from penguin.errors import Conflict, ModelNotInstalled, NotFound, ToolError, ValidationFailed
from penguin.tools.base import Tool
from penguin.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from mcp import Client
    from mcp_types import CallToolResult
    from mcp_types import Tool as MCPTool

SERVER_NAME_RULE = "^[A-Za-z0-9_-]{1,32}$"
_SERVER_NAME = re.compile(SERVER_NAME_RULE)
TOOL_PREFIX = "mcp__"
#: Tool names longer than this are shortened (the limit of the OpenAI function-name field).
MAX_TOOL_NAME = 64
_CLOSE_TIMEOUT = 5.0
#: JSON-RPC error code the SDK uses when the transport went away under a request.
_CONNECTION_CLOSED = -32000


def namespaced(server: str, tool: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """``mcp__<server>__<tool>``, with characters outside ``[A-Za-z0-9_-]`` replaced by ``_``.

    A name that would pass 64 characters, or collide with one in ``taken`` after that cleaning,
    ends in a short checksum of the original tool name instead.
    """
    name = f"{TOOL_PREFIX}{server}__{re.sub(r'[^A-Za-z0-9_-]', '_', tool)}"
    if len(name) <= MAX_TOOL_NAME and name not in taken:
        return name
    suffix = f"_{zlib.crc32(tool.encode()):08x}"
    return name[: MAX_TOOL_NAME - len(suffix)] + suffix


def result_text(result: CallToolResult) -> str:
    """Flatten an MCP tool result to the text handed back to the model."""
    parts: list[str] = []
    for block in result.content:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {getattr(block, 'mime_type', '')}, {len(getattr(block, 'data', ''))} base64 chars]")
        elif kind == "resource_link":
            parts.append(f"[resource {getattr(block, 'uri', '')}]")
        elif kind == "resource":
            inner = getattr(block, "resource", None)
            text = getattr(inner, "text", None)
            parts.append(str(text) if text is not None else f"[resource {getattr(inner, 'uri', '')}]")
    if not parts and result.structured_content is not None:
        parts.append(orjson.dumps(result.structured_content, default=str).decode())
    return "\n".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class MCPServerInfo:
    """An attached MCP server as the API reports it."""

    name: str
    transport: Literal["stdio", "http"]
    #: The command line or the URL.
    target: str
    #: The only agent that sees its tools (None = every agent).
    agent_id: str | None
    #: The namespaced tool names it contributed.
    tools: tuple[str, ...]
    connected: bool
    #: Why the connection ended, when it did so on its own.
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "transport": self.transport, "target": self.target, "agent_id": self.agent_id,
                "tools": list(self.tools), "connected": self.connected, "error": self.error}


@dataclass(slots=True, kw_only=True)
class _Connection:
    """One open MCP session, owned by its background task."""

    name: str
    transport: Literal["stdio", "http"]
    target: str
    agent_id: str | None
    command: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    url: str | None = None
    log_path: Path | None = None
    tools: tuple[str, ...] = ()
    client: Client | None = None
    failure: str | None = None
    task: asyncio.Task[None] | None = None
    ready: asyncio.Future[list[MCPTool]] | None = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def _client(self, errlog: TextIO | None) -> Client:
        from mcp import Client, StdioServerParameters, stdio_client

        if self.url is not None:
            return Client(self.url)
        params = StdioServerParameters(command=self.command[0], args=list(self.command[1:]),
                                       env=dict(self.env) if self.env else None)
        return Client(stdio_client(params, errlog=errlog) if errlog is not None else stdio_client(params))

    async def serve(self) -> None:
        ready_fut = self.ready
        errlog: TextIO | None = None
        try:
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                errlog = self.log_path.open("a", encoding="utf-8")
            async with self._client(errlog) as client:
                tools = await _list_tools(client)
                self.client = client
                if ready_fut is not None and not ready_fut.done():
                    ready_fut.set_result(tools)
                await self.closing.wait()
        except Exception as exc:  # the server died or never came up: recorded, never raised into a turn
            self.failure = _describe(exc)
            if ready_fut is not None and not ready_fut.done():
                ready_fut.set_exception(exc)
        finally:
            self.client = None
            if ready_fut is not None and not ready_fut.done():
                ready_fut.set_exception(ToolError(f"MCP server {self.name!r} closed before it was ready"))
            if errlog is not None:
                errlog.close()

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        client = self.client
        if client is None or self.failure is not None:
            why = f" ({self.failure})" if self.failure else ""
            raise ToolError(f"MCP server {self.name!r} is not connected{why}; detach and attach it again")
        from mcp import MCPError

        try:
            result = await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == _CONNECTION_CLOSED:
                # The server went away; stop the session (and reap the process) instead of waiting for it.
                self.failure = self.failure or "connection closed"
                self.closing.set()
                raise ToolError(f"MCP server {self.name!r} is not connected ({self.failure}); "
                                "detach and attach it again") from None
            raise ToolError(f"MCP server {self.name!r} refused {tool!r}: {exc.message}") from None
        text = result_text(result)
        if result.is_error:
            raise ToolError(f"MCP tool {tool!r} on {self.name!r} failed: {text or 'no details'}")
        return text

    async def close(self) -> None:
        self.closing.set()
        if self.task is None or self.task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), _CLOSE_TIMEOUT)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def _list_tools(client: Client) -> list[MCPTool]:
    tools: list[MCPTool] = []
    cursor: str | None = None
    for _ in range(100):  # a server whose pagination never ends cannot hang an attach
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _tool(conn: _Connection, spec: MCPTool, name: str) -> Tool:
    original = spec.name

    async def call_remote(**arguments: Any) -> str:
        return await conn.call(original, arguments)

    schema = dict(spec.input_schema or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    schema.pop("title", None)
    description = spec.description or spec.title or original
    return Tool(name=name, description=f"[MCP server {conn.name}] {description}", parameters=schema,
                function=call_remote, takes_context=False, validator=None, blocking=False)


class MCPManager:
    """Attaches and detaches MCP servers and keeps their tools in the registry.

    Args:
        registry: where the servers' tools are registered.
        log_dir: stdio servers' stderr goes to ``<log_dir>/mcp-<name>.log``.
        connect_timeout: seconds to start a server and list its tools.
    """

    def __init__(self, registry: ToolRegistry, *, log_dir: Path | None = None, connect_timeout: float = 30.0) -> None:
        self._registry = registry
        self._log_dir = log_dir
        self._connect_timeout = connect_timeout
        self._servers: dict[str, _Connection] = {}

    async def attach(
        self,
        name: str,
        *,
        command: str | None = None,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        url: str | None = None,
        agent_id: str | None = None,
    ) -> MCPServerInfo:
        """Connect to a server and register its tools (for every agent, or only ``agent_id``).

        Raises:
            ValidationFailed: bad name, or not exactly one of ``command`` and ``url``.
            Conflict: a server with this name is already attached.
            ModelNotInstalled: the ``mcp`` package is missing.
            ToolError: the server could not be started or reached, or did not list its tools.
        """
        conn = self._connection(name, command=command, args=args, env=env, url=url, agent_id=agent_id)
        self._servers[name] = conn  # reserve the name while connecting
        try:
            listed = await self._open(conn)
        except BaseException:
            self._servers.pop(name, None)
            await conn.close()
            raise
        taken = set(self._registry.names(agent_id=agent_id))
        names = []
        for spec in listed:
            tool_name = namespaced(name, spec.name, taken)
            taken.add(tool_name)
            self._registry.register(_tool(conn, spec, tool_name), agent_id=agent_id)
            names.append(tool_name)
        conn.tools = tuple(names)
        return self._info(conn)

    def _connection(
        self, name: str, *, command: str | None, args: Sequence[str], env: Mapping[str, str] | None,
        url: str | None, agent_id: str | None,
    ) -> _Connection:
        if not isinstance(name, str) or _SERVER_NAME.fullmatch(name) is None:
            raise ValidationFailed(f"invalid MCP server name {name!r}: 1-32 characters of A-Z, a-z, 0-9, '_' or "
                                   f"'-' ({SERVER_NAME_RULE})", field="name")
        if name in self._servers:
            raise Conflict(f"an MCP server named {name!r} is already attached; detach it first", field="name")
        if (command is None) == (url is None):
            raise ValidationFailed("give exactly one of command (a stdio server) or url (streamable HTTP)",
                                   field="command")
        if url is not None:
            if not url.startswith(("http://", "https://")):
                raise ValidationFailed(f"url must be http:// or https://, not {url[:80]!r}", field="url")
            return _Connection(name=name, transport="http", target=url, agent_id=agent_id, url=url)
        cmd = str(command)
        if not cmd.strip():
            raise ValidationFailed("command must not be empty", field="command")
        argv = (cmd, *args)
        log = self._log_dir / f"mcp-{name}.log" if self._log_dir is not None else None
        return _Connection(name=name, transport="stdio", target=" ".join(argv), agent_id=agent_id,
                           command=argv, env=env, log_path=log)

    async def _open(self, conn: _Connection) -> list[MCPTool]:
        try:
            import mcp  # noqa: F401
        except ImportError:
            raise ModelNotInstalled("MCP support needs the 'mcp' package: pip install 'penguin-agents[mcp]'") from None
        conn.ready = asyncio.get_running_loop().create_future()
        conn.task = asyncio.create_task(conn.serve(), name=f"mcp-server-{conn.name}")
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncio.shield(conn.ready)
        except TimeoutError:
            raise ToolError(f"MCP server {conn.name!r} ({conn.target}) did not answer within "
                            f"{self._connect_timeout:g}s{self._log_hint(conn)}") from None
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"could not connect to MCP server {conn.name!r} ({conn.target}): "
                            f"{_describe(exc)}{self._log_hint(conn)}") from None
        finally:
            if not conn.ready.done():
                conn.ready.cancel()  # a late result or failure of the serving task has nobody to go to

    @staticmethod
    def _log_hint(conn: _Connection) -> str:
        return f"; its stderr is in {conn.log_path}" if conn.log_path is not None else ""

    async def detach(self, name: str) -> MCPServerInfo:
        """Unregister a server's tools and close its session.

        Raises:
            NotFound: no server of that name is attached.
        """
        conn = self._servers.pop(name, None)
        if conn is None:
            raise NotFound(f"no MCP server {name!r} is attached; attached: {sorted(self._servers) or 'none'}",
                           field="name")
        for tool_name in conn.tools:
            self._registry.unregister(tool_name, agent_id=conn.agent_id)
        await conn.close()
        return self._info(conn)

    async def detach_agent(self, agent_id: str) -> None:
        """Detach every server attached for one agent (the agent was removed)."""
        for name in [n for n, c in self._servers.items() if c.agent_id == agent_id]:
            await self.detach(name)

    def servers(self, agent_id: str | None = None) -> list[MCPServerInfo]:
        """Attached servers (those one agent sees, when ``agent_id`` is given)."""
        return [self._info(c) for _, c in sorted(self._servers.items())
                if agent_id is None or c.agent_id in (None, agent_id)]

    async def aclose(self) -> None:
        """Detach every server (the core is stopping); the sessions close concurrently."""
        await asyncio.gather(*(self.detach(name) for name in list(self._servers)))

    @staticmethod
    def _info(conn: _Connection) -> MCPServerInfo:
        return MCPServerInfo(name=conn.name, transport=conn.transport, target=conn.target, agent_id=conn.agent_id,
                             tools=conn.tools, connected=conn.client is not None and conn.failure is None,
                             error=conn.failure)
