"""``penguin db``: see the database's schema version, upgrade it, and (for developers) add a revision.

The database is the one Penguin would open: ``PENGUIN_DATABASE_URL``, else ``penguin.db`` in
``PENGUIN_DATA_DIR``. A database this Penguin cannot open (made by a newer one, or needing an
upgrade while ``PENGUIN_AUTO_MIGRATE=false``) is reported as one ``error:`` line and exit 2, as
every typed error of the CLI is.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from penguin.cli.errors import reported
from penguin.config import Settings
from penguin.storage.database import Database
from penguin.storage.migrate import Migrations, SchemaState, SchemaStatus, refuse_unusable, schema_number
from penguin.storage.owner import DatabaseLock, DataDirLock

db_app = typer.Typer(help="The database schema: its version, upgrades, new revisions.", no_args_is_help=True)

console = Console(soft_wrap=True)


def read_status(settings: Settings) -> SchemaStatus:
    """Where the settings' database stands; reads only, and never creates a SQLite file."""
    url = settings.resolved_database_url()
    migrations = Migrations()
    path = make_url(url).database if url.startswith("sqlite") else None
    if path and path != ":memory:" and not Path(path).exists():
        return SchemaStatus(state=SchemaState.EMPTY, revision=None, schema=None, head=migrations.head)
    return asyncio.run(_status(url, migrations))


async def _status(url: str, migrations: Migrations) -> SchemaStatus:
    db = Database(url, migrations=migrations)
    try:
        return await migrations.status(db.engine)
    finally:
        await db.aclose()


async def _upgrade(settings: Settings) -> tuple[SchemaStatus, SchemaStatus]:
    # An upgrade changes the schema under whoever has the database open: it needs the data
    # directory (and a PostgreSQL database) to itself, as a server does.
    owner = DataDirLock(settings.data_dir)
    info = owner.acquire(role="cli")
    db = Database(settings.resolved_database_url())
    db_owner = None if db.is_sqlite else DatabaseLock(db.engine)
    try:
        if db_owner is not None:
            await db_owner.acquire(info, record=False)
        return await db.migrations.upgrade(db.engine)
    finally:
        if db_owner is not None:
            await db_owner.release()
        await db.aclose()
        owner.release()


def _shown_url(settings: Settings) -> str:
    return make_url(settings.resolved_database_url()).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade() -> None:
    """Upgrade the database to this Penguin's schema now (back it up first).

    Penguin does this itself when it opens an older database, unless PENGUIN_AUTO_MIGRATE=false.
    """
    with reported():
        settings = Settings()
        before, after = asyncio.run(_upgrade(settings))
    if before.pending:
        console.print(f"upgraded {_shown_url(settings)} from {before.describe()} to {after.describe()}", markup=False)
    else:
        console.print(f"{_shown_url(settings)} is up to date: {after.describe()}", markup=False)


@db_app.command("current")
def current(as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False) -> None:
    """Show the database's schema revision, this Penguin's, and whether an upgrade is pending."""
    with reported():
        settings = Settings()
        status = read_status(settings)
        refuse_unusable(status, settings.resolved_database_url())
    if as_json:
        body = {
            "database": _shown_url(settings),
            "state": status.state.value,
            "revision": status.revision,
            "schema": status.schema,
            "head": status.head,
            "head_schema": schema_number(status.head),
            "upgrade_pending": status.pending,
        }
        console.print_json(json.dumps(body))
        return
    if not status.pending:
        verdict = "up to date"
    elif settings.auto_migrate:
        verdict = "upgrade pending (Penguin runs it when it opens the database, or run `penguin db upgrade`)"
    else:
        verdict = "upgrade pending (PENGUIN_AUTO_MIGRATE=false: run `penguin db upgrade`)"
    console.print(f"database: {_shown_url(settings)}", markup=False)
    console.print(f"revision: {status.describe()}", markup=False)
    console.print(f"penguin:  {status.describe_head()}", markup=False)
    console.print(f"status:   {verdict}", markup=False)


@db_app.command("history")
def history() -> None:
    """List the schema revisions this Penguin knows, newest first."""
    from alembic.script import ScriptDirectory

    migrations = Migrations()
    script = ScriptDirectory.from_config(migrations.config())
    for revision in script.walk_revisions():
        marker = "  (head)" if revision.revision == migrations.head else ""
        title = (revision.doc or "").strip().splitlines()[0] if revision.doc else ""
        console.print(f"{revision.revision}  {title}{marker}", markup=False)


@db_app.command("revision")
def revision(
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision changes, in a few words.")],
    autogenerate: Annotated[
        bool, typer.Option("--autogenerate", help="Fill it with what the tables in penguin.storage.schema add.")
    ] = False,
) -> None:
    """Write the next revision file (Penguin developers, in a source checkout; see docs/storage.md)."""
    with reported():
        path = Migrations().write_revision(message, autogenerate=autogenerate)
    console.print(f"wrote {path}", markup=False)


__all__ = ["db_app", "read_status"]
