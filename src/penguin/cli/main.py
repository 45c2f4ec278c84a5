"""The ``penguin`` command line: chat with agents, manage them, run the server.

Commands run in-process on the folder's data directory, or, when a server owns that directory
(or ``--url`` / ``PENGUIN_URL`` names one), as clients of the server (``cli.backend``). Every user
error is one ``error: ...`` line on stderr and exit status 2; a failure of Penguin or of a
dependency exits 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Annotated, Any

import pydantic
import typer
from rich.console import Console
from rich.table import Table

from penguin._version import __version__
from penguin.cli.backend import Backend, open_backend
from penguin.cli.charter import charter_app
from penguin.cli.db import db_app
from penguin.cli.errors import err_console, fail, reported
from penguin.config import Settings

app = typer.Typer(
    help="Penguin: a multi-agent orchestration runtime.", no_args_is_help=True, pretty_exceptions_enable=False
)
agent_app = typer.Typer(help="Manage agents (personas).", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
app.add_typer(charter_app, name="charter")
app.add_typer(db_app, name="db")

console = Console()


def _version(value: bool) -> None:
    if value:
        typer.echo(f"penguin {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option("--url", envvar="PENGUIN_URL",
                     help="Talk to the Penguin server at this URL (default: the server that owns this "
                          "folder's data directory, else run in-process)."),
    ] = None,
    _show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = {"url": url}


@contextmanager
def _backend(ctx: typer.Context) -> Iterator[Backend]:
    with reported():
        backend = open_backend((ctx.obj or {}).get("url"), Settings())
        try:
            yield backend
        finally:
            backend.close()


@app.command()
def chat(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The message to send.")],
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Agent id (default: the default persona).")] = None,
    conversation: Annotated[str | None, typer.Option("--conversation", "-c", help="Conversation id.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Override the model for this call.")] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print the reply as it is produced.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
) -> None:
    """Send one message to an agent and print the reply."""
    with _backend(ctx) as backend:
        backend.prepare(err_console, model=model, agent_id=agent)
        if not stream or as_json:
            result = backend.chat(text, agent_id=agent, conversation_id=conversation, model=model)
            if as_json:
                console.print_json(json.dumps(result))
            else:
                console.print(result["response"], markup=False, highlight=False)
            return
        for item in backend.stream(text, agent_id=agent, conversation_id=conversation, model=model):
            if item.type == "delta":
                sys.stdout.write(item.data["text"])
                sys.stdout.flush()
            elif item.type == "tool_call":
                err_console.print(f"[dim]→ {item.data['name']}({item.data['arguments']})[/]", highlight=False)
            elif item.type == "error":
                sys.stdout.write("\n")
                fail(str(item.data.get("detail")), user_error=int(item.data.get("status", 500)) < 500)
        sys.stdout.write("\n")


@agent_app.command("list")
def agent_list(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List every agent."""
    with _backend(ctx) as backend:
        agents = backend.list_agents()
        default_model = backend.default_model()
    if as_json:
        console.print_json(json.dumps(agents))
        return
    table = Table("agent_id", "model", "roles", "paused", "parent")
    for a in agents:
        table.add_row(
            a["agent_id"],
            a["model"] or (f"{default_model} (default)" if default_model else "(server default)"),
            ", ".join(a["roles"]),
            "yes" if a["paused"] else "",
            a["parent_id"] or "",
        )
    console.print(table)


@agent_app.command("create")
def agent_create(
    ctx: typer.Context,
    agent_id: Annotated[str, typer.Argument(help="1-64 chars of A-Z a-z 0-9 _ -")],
    persona: Annotated[str, typer.Option("--persona", "-p", help="System prompt.")] = "",
    model: Annotated[str | None, typer.Option("--model", "-m", help="provider:model")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help="A role (repeatable).")] = None,
) -> None:
    """Create an agent."""
    with _backend(ctx) as backend:
        spec = backend.create_agent(agent_id, system_prompt=persona, model=model, roles=role or [])
    console.print_json(json.dumps(spec))


@agent_app.command("show")
def agent_show(ctx: typer.Context, agent_id: str) -> None:
    """Show one agent's settings."""
    with _backend(ctx) as backend:
        spec = backend.get_agent(agent_id)
    console.print_json(json.dumps(spec))


@agent_app.command("remove")
def agent_remove(ctx: typer.Context, agent_id: str) -> None:
    """Remove an agent (its conversations stay in the database)."""
    with _backend(ctx) as backend:
        backend.remove_agent(agent_id)
    console.print(f"removed {agent_id}")


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option("--host", help="Address to bind (default 127.0.0.1, or PENGUIN_HOST).")
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default 8000, or PENGUIN_PORT).")] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log", help="One log line per request (default off, or PENGUIN_ACCESS_LOG)."
        ),
    ] = None,
) -> None:
    """Run the HTTP API (REST, WebSocket, /docs). Non-loopback hosts need PENGUIN_API_KEY."""
    from penguin.cli.serve import serve as run_server

    overrides: dict[str, Any] = {} if access_log is None else {"access_log": access_log}
    with reported():
        run_server(host, port, settings=Settings(**overrides))


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    exit_after: Annotated[bool, typer.Option("--exit", help="Stop the server when the scenario is done.")] = False,
) -> None:
    """Start the server and run a short offline multi-agent scenario, then keep serving."""
    from penguin.cli.demo import demo as run_demo

    with reported(), suppress(KeyboardInterrupt):
        run_demo(host, port, exit_after=exit_after, console=console)


@app.command()
def mcp(ctx: typer.Context) -> None:
    """Serve Penguin's agents as MCP tools over stdin/stdout (for MCP clients that start a command)."""
    from penguin.cli.mcp import run

    with reported():
        run((ctx.obj or {}).get("url"), Settings())


def main() -> None:
    try:
        app()
    except pydantic.ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        # A bad setting (PENGUIN_* variable, penguin.toml): say which and why, without a traceback.
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            err_console.print(f"[bold red]error:[/] setting {name} ({_env_name(name)}): {error['msg']}")
        raise SystemExit(2) from None


def _env_name(setting: str) -> str:
    return "PENGUIN_" + setting.upper().replace(".", "__")


if __name__ == "__main__":
    main()
