"""``penguin charter show|lint``: read and check the workspace's ``context/TASK_CHARTER.md``.

Both commands only read files, so they run whether or not a server owns the data directory: they
open the configured workspace (settings from ``PENGUIN_*`` and ``penguin.toml``) read-only with the
same ``CharterFiles`` and ``lint`` as ``PenguinCore.charter_get`` / ``charter_lint``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from penguin.charter import Charter, CharterFiles, Problem, lint, render
from penguin.cli.errors import reported
from penguin.config import Settings
from penguin.tools.sandbox import Workspace

charter_app = typer.Typer(help="Show and lint the task charter (context/TASK_CHARTER.md).", no_args_is_help=True)
console = Console()


def _workspace() -> Workspace:
    return Workspace.from_settings(Settings())


async def _get() -> Charter:
    return await CharterFiles(_workspace()).get()


async def _lint() -> list[Problem]:
    workspace = _workspace()
    return lint(await CharterFiles(workspace).get(), workspace=workspace)


@charter_app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="Print TASK_CHARTER.json instead.")] = False) -> None:
    """Print the charter (Markdown, or JSON with --json)."""
    with reported():
        charter = asyncio.run(_get())
    if as_json:
        console.print_json(json.dumps(charter.to_dict()))
    else:
        # Plain echo: rich would wrap long lines and the output must parse as TASK_CHARTER.md.
        typer.echo(render(charter), nl=False)


@charter_app.command("lint")
def lint_command(as_json: Annotated[bool, typer.Option("--json", help="Print problems as JSON.")] = False) -> None:
    """List placeholder problems; exit status 1 when there is any."""
    with reported():
        problems = asyncio.run(_lint())
    if as_json:
        console.print_json(json.dumps([p.to_dict() for p in problems]))
    elif problems:
        for problem in problems:
            typer.echo(f"{problem.code}\t{problem}")
    else:
        typer.echo("charter: no problems")
    if problems:
        raise typer.Exit(1)
