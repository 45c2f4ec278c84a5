"""The ``penguin`` command line: chat with agents and manage them in-process."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import pydantic
import typer
from rich.console import Console
from rich.table import Table

from penguin.agent import PenguinAgent
from penguin.cli.charter import charter_app
from penguin.cli.db import db_app
from penguin.config import Settings
from penguin.errors import PenguinError

app = typer.Typer(
    help="Penguin: a multi-agent orchestration runtime.", no_args_is_help=True, pretty_exceptions_enable=False
)
agent_app = typer.Typer(help="Manage agents (personas).", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
app.add_typer(charter_app, name="charter")
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)


def _fail(exc: PenguinError) -> None:
    err_console.print(f"[bold red]error:[/] {exc.detail}")
    raise typer.Exit(2 if exc.status < 500 else 1)


def _open(model: str | None = None) -> PenguinAgent:
    overrides: dict[str, Any] = {}
    if model:
        overrides["model"] = model
    return PenguinAgent(**overrides)


@app.command()
def chat(
    text: Annotated[str, typer.Argument(help="The message to send.")],
    agent: Annotated[str | None, typer.Option("--agent", "-a", help="Agent id (default: the default persona).")] = None,
    conversation: Annotated[str | None, typer.Option("--conversation", "-c", help="Conversation id.")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Override the model for this call.")] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Print the reply as it is produced.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
) -> None:
    """Send one message to an agent, in-process, and print the reply."""
    try:
        with _open() as penguin:
            if stream and not as_json:
                for event in penguin.stream(text, agent_id=agent, conversation_id=conversation, model=model):
                    if event.type == "delta":
                        sys.stdout.write(event.data["text"])
                        sys.stdout.flush()
                    elif event.type == "tool_call":
                        err_console.print(f"[dim]→ {event.data['name']}({event.data['arguments']})[/]")
                    elif event.type == "error":
                        err_console.print(f"[bold red]error:[/] {event.data.get('detail')}")
                        raise typer.Exit(1)
                sys.stdout.write("\n")
                return
            result = penguin.chat(text, agent_id=agent, conversation_id=conversation, model=model)
            if as_json:
                console.print_json(json.dumps(result.to_dict()))
            else:
                console.print(result.text, markup=False, highlight=False)
    except PenguinError as exc:
        _fail(exc)


@agent_app.command("list")
def agent_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List every agent."""
    with _open() as penguin:
        specs = penguin.list_agents()
        default_model = penguin.core.settings.resolved_default_model()
    if as_json:
        console.print_json(json.dumps([s.to_dict() for s in specs]))
        return
    table = Table("agent_id", "model", "roles", "paused", "parent")
    for s in specs:
        table.add_row(
            s.agent_id,
            s.model or f"{default_model} (default)",
            ", ".join(s.roles),
            "yes" if s.paused else "",
            s.parent_id or "",
        )
    console.print(table)


@agent_app.command("create")
def agent_create(
    agent_id: Annotated[str, typer.Argument(help="1-64 chars of A-Z a-z 0-9 _ -")],
    persona: Annotated[str, typer.Option("--persona", "-p", help="System prompt.")] = "",
    model: Annotated[str | None, typer.Option("--model", "-m", help="provider:model")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help="A role (repeatable).")] = None,
) -> None:
    """Create an agent."""
    try:
        with _open() as penguin:
            spec = penguin.create_agent(agent_id, system_prompt=persona, model=model, roles=role or [])
        console.print_json(json.dumps(spec.to_dict()))
    except PenguinError as exc:
        _fail(exc)


@agent_app.command("show")
def agent_show(agent_id: str) -> None:
    """Show one agent's settings."""
    try:
        with _open() as penguin:
            spec = penguin.get_agent(agent_id)
        console.print_json(json.dumps(spec.to_dict()))
    except PenguinError as exc:
        _fail(exc)


@agent_app.command("remove")
def agent_remove(agent_id: str) -> None:
    """Remove an agent (its conversations stay in the database)."""
    try:
        with _open() as penguin:
            penguin.remove_agent(agent_id)
        console.print(f"removed {agent_id}")
    except PenguinError as exc:
        _fail(exc)


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

    try:
        settings = Settings() if access_log is None else Settings(access_log=access_log)
        run_server(host, port, settings=settings)
    except PenguinError as exc:
        _fail(exc)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    exit_after: Annotated[bool, typer.Option("--exit", help="Stop the server when the scenario is done.")] = False,
) -> None:
    """Start the server and run a short offline multi-agent scenario, then keep serving."""
    import asyncio

    from penguin.cli.demo import demo as run_demo

    try:
        asyncio.run(run_demo(host, port, exit_after=exit_after, console=console))
    except PenguinError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        pass


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
