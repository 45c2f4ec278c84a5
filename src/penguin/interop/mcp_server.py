"""Penguin as an MCP server: its agents as tools for any MCP client (Claude Desktop, IDEs, agents).

Five tools: ``list_agents``, ``chat`` (one turn of an agent, optionally in a given conversation),
``send_message`` (a bus message with a receipt), ``run_task`` (a background task) and
``get_task``. Two transports:

* streamable HTTP at ``/mcp`` of ``penguin serve`` (``McpFace``; stateless JSON responses, behind
  the API's authentication; a keyless server also refuses foreign ``Host``/``Origin`` headers,
  the MCP SDK's DNS-rebinding protection, since it serves loopback only);
* stdio, ``penguin mcp`` (``serve_stdio``): on an in-process core, or, when ``penguin serve`` owns
  the folder (or ``--url`` names a server), as a client of that server.

Both reach Penguin through ``Operations``: the core's own methods, or the same calls over REST,
so a turn through MCP is recorded like any other. A Penguin error becomes an MCP tool error
(``isError``) whose text is the error's detail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol, TypeVar

from pydantic import Field
from starlette.types import Receive, Scope, Send

import penguin
from penguin.errors import PenguinError

T = TypeVar("T")
Runner = Callable[[Coroutine[Any, Any, T]], Awaitable[T]]

INSTRUCTIONS = (
    "Penguin hosts many LLM agents, each addressed by an agent_id with its own conversation, model and "
    "tools. Use list_agents to see them and chat to talk to one (it remembers the conversation); "
    "send_message queues a bus message, run_task starts background work that get_task reports on."
)


class Operations(Protocol):
    """What the MCP tools do, as plain JSON-ready data."""

    async def list_agents(self) -> list[dict[str, Any]]: ...

    async def chat(self, agent_id: str, text: str, conversation_id: str | None) -> dict[str, Any]: ...

    async def send_message(self, sender: str, recipient: str, content: str,
                           channel: str | None) -> dict[str, Any]: ...

    async def run_task(self, prompt: str, agent_id: str | None, agent_role: str | None,
                       max_iterations: int) -> dict[str, Any]: ...

    async def get_task(self, task_id: str) -> dict[str, Any]: ...


class CoreOperations:
    """``Operations`` on an in-process ``PenguinCore``.

    Args:
        core: the core.
        run: runs a turn's coroutine (the API's turn tracker, so shutdown drains it); default: await it.
    """

    def __init__(self, core: Any, run: Runner[Any] | None = None) -> None:
        self._core = core
        self._run = run

    async def list_agents(self) -> list[dict[str, Any]]:
        return [spec.to_dict() for spec in self._core.list_agents()]

    async def chat(self, agent_id: str, text: str, conversation_id: str | None) -> dict[str, Any]:
        turn = self._core.chat(text, agent_id=agent_id, conversation_id=conversation_id)
        result = await (self._run(turn) if self._run is not None else turn)
        return dict(result.to_dict())

    async def send_message(self, sender: str, recipient: str, content: str, channel: str | None) -> dict[str, Any]:
        receipt = await self._core.send_message(sender, recipient, content, channel=channel)
        return dict(receipt.to_dict())

    async def run_task(self, prompt: str, agent_id: str | None, agent_role: str | None,
                       max_iterations: int) -> dict[str, Any]:
        task = await self._core.run_task(prompt, agent_id=agent_id, agent_role=agent_role,
                                         max_iterations=max_iterations)
        return dict(task.to_dict())

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return dict((await self._core.get_task(task_id)).to_dict())


class ClientOperations:
    """``Operations`` as REST calls to a running server (``PenguinClient``)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def list_agents(self) -> list[dict[str, Any]]:
        return [a.model_dump(mode="json") for a in await self._client.list_agents()]

    async def chat(self, agent_id: str, text: str, conversation_id: str | None) -> dict[str, Any]:
        from penguin.api_client import ChatOptions

        reply = await self._client.chat(text, ChatOptions(agent_id=agent_id, conversation_id=conversation_id))
        return dict(reply.model_dump(mode="json"))

    async def send_message(self, sender: str, recipient: str, content: str, channel: str | None) -> dict[str, Any]:
        receipt = await self._client.send_message(recipient, content, sender=sender, channel=channel)
        return dict(receipt.model_dump(mode="json"))

    async def run_task(self, prompt: str, agent_id: str | None, agent_role: str | None,
                       max_iterations: int) -> dict[str, Any]:
        from penguin.api_client import TaskOptions

        options = TaskOptions(agent_id=agent_id, agent_role=agent_role, max_iterations=max_iterations)
        return dict((await self._client.run_task(prompt, options)).model_dump(mode="json"))

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return dict((await self._client.get_task(task_id)).model_dump(mode="json"))


def build_server(ops: Operations) -> Any:
    """An ``MCPServer`` whose tools call ``ops``."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer("penguin", version=penguin.__version__, instructions=INSTRUCTIONS)

    async def call(work: Awaitable[T]) -> T:
        try:
            return await work
        except PenguinError as exc:
            raise ToolError(f"{exc.detail} [{exc.code}]") from None

    @server.tool(description="List the agents: id, roles, model, system prompt, paused.")
    async def list_agents() -> dict[str, Any]:
        return {"agents": await call(ops.list_agents())}

    @server.tool(description="Send text to an agent and return its reply. The agent keeps the "
                             "conversation: call again with the same agent_id to continue it.")
    async def chat(
        agent_id: Annotated[str, Field(description="The agent (created on first use unless auto-create is off).")],
        text: Annotated[str, Field(description="The message to the agent.", min_length=1)],
        conversation_id: Annotated[str | None, Field(description="A conversation of the agent; default "
                                                                 "its main one.")] = None,
    ) -> dict[str, Any]:
        return await call(ops.chat(agent_id, text, conversation_id))

    @server.tool(description="Queue a message on the bus for an agent id or role:<name>; returns its "
                             "receipt (queued -> delivered -> processed).")
    async def send_message(
        recipient: Annotated[str, Field(description="An agent id, or role:<name>.")],
        content: Annotated[str, Field(description="The message.", min_length=1)],
        sender: Annotated[str, Field(description="Who the message is from.")] = "mcp",
        channel: Annotated[str | None, Field(description="A channel name, e.g. a room.")] = None,
    ) -> dict[str, Any]:
        return await call(ops.send_message(sender, recipient, content, channel))

    @server.tool(description="Start a background task for an agent (by id or role); poll it with get_task.")
    async def run_task(
        prompt: Annotated[str, Field(description="What the task is to do.", min_length=1)],
        agent_id: Annotated[str | None, Field(description="The agent that runs it.")] = None,
        agent_role: Annotated[str | None, Field(description="Pick the agent by role instead.")] = None,
        max_iterations: Annotated[int, Field(ge=1, le=1000, description="Turns at most.")] = 10,
    ) -> dict[str, Any]:
        return await call(ops.run_task(prompt, agent_id, agent_role, max_iterations))

    @server.tool(description="A task's status, progress and result.")
    async def get_task(task_id: Annotated[str, Field(description="The id run_task returned.")]) -> dict[str, Any]:
        return await call(ops.get_task(task_id))

    return server


class McpFace:
    """The streamable-HTTP transport at ``/mcp``: an ASGI app plus the lifespan it needs.

    Args:
        ops: what the tools call.
        protect_host: refuse ``Host``/``Origin`` headers other than loopback ones (a keyless server).
    """

    def __init__(self, ops: Operations, *, protect_host: bool) -> None:
        from mcp.server.transport_security import TransportSecuritySettings

        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=protect_host,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
        server = build_server(ops)
        # Stateless with JSON answers: every call stands alone (the conversation lives in Penguin,
        # addressed by agent and conversation id), so nothing is held per MCP session and a
        # shutdown has no open streams to wait for. Building the SDK's own app creates the session
        # manager; only the manager is used, under Penguin's route and middleware.
        server.streamable_http_app(json_response=True, stateless_http=True, transport_security=security)
        self._manager = server.session_manager

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the session manager (the app's lifespan holds it for the server's life)."""
        async with self._manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._manager.handle_request(scope, receive, send)


def mount(app: Any, core: Any, run: Runner[Any]) -> McpFace | None:
    """Serve ``/mcp`` on ``app`` (``None`` when the ``mcp`` extra is missing: ``/mcp`` then answers
    503 with how to install it)."""
    from starlette.routing import Route

    try:
        face = McpFace(CoreOperations(core, run), protect_host=not core.settings.api_key)
    except ImportError:
        app.add_route("/mcp", _missing_extra, methods=["GET", "POST", "DELETE"], include_in_schema=False)
        return None
    app.router.routes.append(Route("/mcp", face, methods=["GET", "POST", "DELETE"], include_in_schema=False))
    return face


async def _missing_extra(request: Any) -> Any:
    from penguin.api.errors import problem_response
    from penguin.errors import ExtraNotInstalled

    return problem_response(ExtraNotInstalled("the MCP server needs the mcp extra: pip install 'penguin-agents[mcp]'"))


async def serve_stdio(ops: Operations) -> None:
    """Speak MCP over this process's stdin/stdout until the client closes it."""
    await build_server(ops).run_stdio_async()


__all__ = ["ClientOperations", "CoreOperations", "McpFace", "Operations", "build_server", "mount", "serve_stdio"]
