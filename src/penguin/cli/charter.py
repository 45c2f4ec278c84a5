"""``penguin charter show|lint``: read and check the workspace's ``context/TASK_CHARTER.md``.

Both commands open an in-process ``PenguinCore`` (settings from ``PENGUIN_*`` and ``penguin.toml``)
and call the same ``charter_get`` / ``charter_lint`` methods as every other surface.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console

from penguin.charter import Charter, Problem, render
from penguin.core import PenguinCore
from penguin.errors import PenguinError

charter_app = typer.Typer(help="Show and lint the task charter (context/TASK_CHARTER.md).", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


async def _get() -> Charter:
    async with PenguinCore() as core:
        return await core.charter_get()


async def _lint() -> list[Problem]:
    async with PenguinCore() as core:
        return await core.charter_lint()


def _fail(exc: PenguinError) -> None:
    err_console.print(f"[bold red]error:[/] {exc.detail}", markup=True, highlight=False)
    raise typer.Exit(2 if exc.status < 500 else 1)


@charter_app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json", help="Print TASK_CHARTER.json instead.")] = False) -> None:
    """Print the charter (Markdown, or JSON with --json)."""
    try:
        charter = asyncio.run(_get())
    except PenguinError as exc:
        _fail(exc)
        return
    if as_json:
        console.print_json(json.dumps(charter.to_dict()))
    else:
        # Plain echo: rich would wrap long lines and the output must parse as TASK_CHARTER.md.
        typer.echo(render(charter), nl=False)


@charter_app.command("lint")
def lint_command(as_json: Annotated[bool, typer.Option("--json", help="Print problems as JSON.")] = False) -> None:
    """List placeholder problems; exit status 1 when there is any."""
    try:
        problems = asyncio.run(_lint())
    except PenguinError as exc:
        _fail(exc)
        return
    if as_json:
        console.print_json(json.dumps([p.to_dict() for p in problems]))
    elif problems:
        for problem in problems:
            typer.echo(f"{problem.code}\t{problem}")
    else:
        typer.echo("charter: no problems")
    if problems:
        raise typer.Exit(1)
