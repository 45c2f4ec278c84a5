"""Schema migrations: bring a database to this Penguin's schema when it is opened, or refuse it.

The schema is made and changed only by the Alembic revisions in ``penguin/storage/migrations``
(an empty database is created by running them, the same path an old one takes). Revision ids
are ``NNNN_words`` and the history is a line, so the newest is the highest number and
``penguin_schema.version`` holds that number: a schema version people can read, and the one
release 0.3.3 wrote before Penguin used Alembic.

What opening finds, and what it does (``SchemaState``)::

    EMPTY          no Penguin tables           run every revision (creates the schema)
    UNVERSIONED    penguin_schema 1, no        run every revision: the baseline adopts the tables
                   alembic_version (0.3.3)     0.3.3 or an older build made, then the rest apply
    BEHIND         an older revision           run the newer revisions
    CURRENT        the newest revision         nothing
    AHEAD          a revision this code does   refuse (SchemaTooNew), touch nothing
                   not know, or penguin_schema
                   above the newest number
    UNRECOGNIZED   Penguin's table names but   refuse (SchemaUnrecognized)
                   no schema version at all

Upgrades run automatically unless ``Settings.auto_migrate`` is off (``PENGUIN_AUTO_MIGRATE=false``),
then opening a database that needs one raises ``MigrationRequired`` and ``penguin db upgrade``
runs it. An upgrade is one transaction (DDL is transactional on both databases), held under a
PostgreSQL advisory lock so that processes opening one database at once migrate it once, and
under ``BEGIN IMMEDIATE`` on SQLite.

Opening a database that is up to date reads three small things (the table names, the revision
and the schema number) and never imports Alembic; the revision files are only listed, not loaded.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
import tempfile
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from penguin.errors import (
    MigrationFailed,
    MigrationRequired,
    SchemaTooNew,
    SchemaUnrecognized,
    ValidationFailed,
)
from penguin.storage.schema import schema_info

if TYPE_CHECKING:
    from alembic.config import Config

#: The Alembic environment shipped in the package (``env.py``, ``script.py.mako``, ``versions/``).
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSIONS_DIR = MIGRATIONS_DIR / "versions"
#: The revision that describes release 0.3.3's schema; every database made before migrations is adopted by it.
BASELINE = "0001_release_0_3_3"
#: The ``penguin_schema.version`` that 0.3.3 (and every build before migrations) wrote.
UNVERSIONED_SCHEMA = 1
#: Key of the PostgreSQL advisory lock held while migrating ("penguin" in ASCII).
PG_LOCK_KEY = 0x70656E6775696E
#: Objects that the revisions create with dialect DDL and ``metadata`` does not describe: the
#: keyword index of memories (SQLite FTS5 table and its shadow tables, PostgreSQL GIN index).
OUTSIDE_METADATA = re.compile(r"^(memory_fts(_\w+)?|ix_memories_fts)$")

#: Alembic keeps the running migration in module globals (``alembic.op``, ``alembic.context``), so
#: two migrations must not interleave in one process, even of different databases (they did: two
#: cores starting at once on two new files). The one module-level object in Penguin, because the
#: state it guards is module-level too; a thread lock, polled from async code, serves every event
#: loop and thread (``PenguinAgent`` runs its own). Taken before the database lock, never inside it.
_ALEMBIC_IN_USE = threading.Lock()

_REVISION_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.py$")
#: Tables every Penguin database has had; finding one without a schema version is suspicious.
_PENGUIN_TABLES = frozenset({"agents", "conversations", "messages"})


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: leave out of comparisons what ``OUTSIDE_METADATA`` names."""
    return not (name and type_ in ("table", "index") and OUTSIDE_METADATA.match(name))


def schema_number(revision: str) -> int:
    """The schema number of a revision id (``0001_release_0_3_3`` → 1)."""
    return int(revision[:4])


class SchemaState(enum.Enum):
    """Where a database stands against this code's revisions (see the module docstring)."""

    EMPTY = "empty"
    UNVERSIONED = "unversioned"
    BEHIND = "behind"
    CURRENT = "current"
    AHEAD = "ahead"
    UNRECOGNIZED = "unrecognized"


@dataclass(frozen=True, slots=True, kw_only=True)
class SchemaStatus:
    """A database's schema version next to this code's."""

    state: SchemaState
    #: The database's Alembic revision (``alembic_version``); None before migrations.
    revision: str | None
    #: ``penguin_schema.version``; None when the table or its row is missing.
    schema: int | None
    #: This code's newest revision.
    head: str

    @property
    def pending(self) -> bool:
        """True when an upgrade would change the database."""
        return self.state in (SchemaState.EMPTY, SchemaState.UNVERSIONED, SchemaState.BEHIND)

    def describe(self) -> str:
        """The database's version in words, for messages."""
        if self.state is SchemaState.EMPTY:
            return "empty (no Penguin tables yet)"
        if self.state is SchemaState.UNVERSIONED:
            return f"schema {self.schema or UNVERSIONED_SCHEMA} (made before migrations, by Penguin 0.3.3 or older)"
        if self.revision is None:
            return "no schema version" if self.schema is None else f"schema {self.schema} (no migration revision)"
        schema = "" if self.schema is None else f" (schema {self.schema})"
        return f"revision {self.revision}{schema}"

    def describe_head(self) -> str:
        """This code's version in words, for messages."""
        return f"revision {self.head} (schema {schema_number(self.head)})"


class Migrations:
    """Penguin's Alembic revisions: which exist, where a database stands, and running them.

    Args:
        version_dirs: folders of revision files; the default is the package's ``versions/``.
            Tests add a folder to rehearse a revision the package does not have yet.
    """

    def __init__(self, version_dirs: Sequence[Path] = (VERSIONS_DIR,)) -> None:
        self.version_dirs = tuple(version_dirs)
        self._revisions: tuple[str, ...] | None = None

    @property
    def revisions(self) -> tuple[str, ...]:
        """Every revision id, oldest first (listed from the file names; nothing is imported)."""
        if self._revisions is None:
            names = [p.name for d in self.version_dirs for p in d.iterdir() if _REVISION_FILE.match(p.name)]
            self._revisions = tuple(sorted(name.removesuffix(".py") for name in names))
        return self._revisions

    @property
    def head(self) -> str:
        """The newest revision id."""
        return self.revisions[-1]

    def config(self, connection: sa.Connection | None = None) -> Config:
        """An Alembic ``Config`` for these revisions that runs on ``connection``."""
        from alembic.config import Config  # deferred: Alembic is loaded only when a migration is due

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("path_separator", "os")
        config.set_main_option("version_locations", os.pathsep.join(str(d) for d in self.version_dirs))
        # A revision file is named by its id, so listing the folder finds the revisions.
        config.set_main_option("file_template", "%%(rev)s")
        config.attributes["connection"] = connection
        return config

    def write_revision(self, message: str, *, autogenerate: bool = False) -> Path:
        """Write the next revision file into the first version folder and return it (for developers).

        Its id is the next number and the message's words (``0002_add_widgets``). With
        ``autogenerate`` it holds the operations that ``metadata`` has and a database at the newest
        revision lacks, compared on a scratch SQLite database: review them, and run the migration
        tests, which compare on PostgreSQL too.
        """
        from alembic import command

        rev_id = f"{schema_number(self.head) + 1:04d}_{_slug(message)}"
        target = self.version_dirs[0]
        if autogenerate:
            with tempfile.TemporaryDirectory() as scratch:
                engine = sa.create_engine(f"sqlite:///{scratch}/head.db")
                try:
                    with engine.begin() as conn:
                        self._run(conn)
                        command.revision(
                            self.config(conn), message, rev_id=rev_id, version_path=str(target), autogenerate=True
                        )
                finally:
                    engine.dispose()
        else:
            command.revision(self.config(), message, rev_id=rev_id, version_path=str(target))
        self._revisions = None
        return target / f"{rev_id}.py"

    # Reading ---------------------------------------------------------------------------------

    def read_status(self, conn: sa.Connection) -> SchemaStatus:
        """Where the database behind ``conn`` stands (three small reads)."""
        tables = set(sa.inspect(conn).get_table_names())
        revision: str | None = None
        if "alembic_version" in tables:
            found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
            # Several rows would mean branches, which Penguin's linear history never makes; an
            # unknown one among them decides (the database is ahead).
            unknown = [r for r in found if r not in self.revisions]
            revision = (unknown or sorted(found))[-1] if found else None
        schema: int | None = None
        if "penguin_schema" in tables:
            schema = conn.execute(sa.text("SELECT max(version) FROM penguin_schema")).scalar()
        return SchemaStatus(
            state=self._classify(tables, revision, schema), revision=revision, schema=schema, head=self.head
        )

    def _classify(self, tables: set[str], revision: str | None, schema: int | None) -> SchemaState:
        newest = schema_number(self.head)
        if revision is not None:
            if revision not in self.revisions or (schema is not None and schema > newest):
                return SchemaState.AHEAD
            return SchemaState.CURRENT if revision == self.head else SchemaState.BEHIND
        if "penguin_schema" in tables:
            if schema is None or schema <= UNVERSIONED_SCHEMA:
                return SchemaState.UNVERSIONED
            # Only a Penguin with migrations writes a higher number, and it writes a revision too.
            return SchemaState.AHEAD if schema > newest else SchemaState.UNRECOGNIZED
        return SchemaState.UNRECOGNIZED if tables & _PENGUIN_TABLES else SchemaState.EMPTY

    async def status(self, engine: AsyncEngine) -> SchemaStatus:
        """Where the database stands; reads only."""
        async with engine.connect() as conn:
            return await conn.run_sync(self.read_status)

    # Changing --------------------------------------------------------------------------------

    async def open(self, engine: AsyncEngine, *, auto_migrate: bool = True) -> SchemaStatus:
        """Make the database ready for this code: upgrade it if it is older, or refuse it.

        Raises:
            SchemaTooNew: a newer Penguin made it (nothing is changed).
            SchemaUnrecognized: it has Penguin's tables but no schema version.
            MigrationRequired: it needs an upgrade and ``auto_migrate`` is off.
            MigrationFailed: the upgrade failed and was rolled back.
        """
        status = await self.status(engine)
        if status.state is SchemaState.CURRENT:
            return status
        refuse(status, engine.url, auto_migrate=auto_migrate)
        _, after = await self.upgrade(engine)
        return after

    async def upgrade(self, engine: AsyncEngine) -> tuple[SchemaStatus, SchemaStatus]:
        """Run every revision the database lacks, in one transaction; returns (before, after).

        Raises:
            SchemaTooNew, SchemaUnrecognized: as ``open`` (nothing is changed).
            MigrationFailed: a revision failed; the transaction was rolled back.
        """
        async with _alembic_to_ourselves(), _migration_transaction(engine) as conn:
            before = await conn.run_sync(self.read_status)
            refuse_unusable(before, engine.url)
            if not before.pending:
                return before, before
            try:
                await conn.run_sync(self._run)
            except Exception as exc:  # any failure of a revision, translated once, here
                raise MigrationFailed(
                    f"upgrading the database {_safe_url(engine.url)} from {before.describe()} to "
                    f"{before.describe_head()} failed and was rolled back, so nothing was changed: "
                    f"{type(exc).__name__}: {exc}".rstrip(),
                    database=before.describe(),
                    code_version=before.describe_head(),
                ) from exc
            after = await conn.run_sync(self.read_status)
        return before, after

    def _run(self, conn: sa.Connection) -> None:
        from alembic import command  # deferred, as in ``config``

        command.upgrade(self.config(conn), "head")
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(sa.delete(schema_info))
        conn.execute(sa.insert(schema_info).values(version=schema_number(revision)))


def refuse(status: SchemaStatus, url: sa.URL | str, *, auto_migrate: bool) -> None:
    """Raise the error opening the database would raise, if any, without changing it.

    Raises:
        SchemaTooNew, SchemaUnrecognized: as ``refuse_unusable``.
        MigrationRequired: it needs an upgrade and ``auto_migrate`` is off.
    """
    refuse_unusable(status, url)
    if status.pending and not auto_migrate:
        raise MigrationRequired(
            f"the database {_safe_url(url)} is {_where(status)} and this Penguin needs "
            f"{status.describe_head()}; back it up and run `penguin db upgrade`, or let Penguin upgrade it "
            "when it opens it (PENGUIN_AUTO_MIGRATE=true, the default)",
            database=status.describe(),
            code_version=status.describe_head(),
        )


def refuse_unusable(status: SchemaStatus, url: sa.URL | str) -> None:
    """Raise when no upgrade can make the database usable by this code.

    Raises:
        SchemaTooNew: a newer Penguin made it.
        SchemaUnrecognized: Penguin's tables without a schema version.
    """
    if status.state is SchemaState.AHEAD:
        raise SchemaTooNew(
            f"the database {_safe_url(url)} is {_where(status)}, newer than this Penguin, which knows "
            f"up to {status.describe_head()}; install the Penguin that upgraded it (pip install -U "
            "penguin-agents) or point PENGUIN_DATABASE_URL at another database. Nothing was changed",
            database=status.describe(),
            code_version=status.describe_head(),
        )
    if status.state is SchemaState.UNRECOGNIZED:
        raise SchemaUnrecognized(
            f"the database {_safe_url(url)} has Penguin's tables but {status.describe()}, so it was not made "
            f"by a released Penguin (this one needs {status.describe_head()}); restore a backup or point "
            "PENGUIN_DATABASE_URL at an empty database. Nothing was changed",
            database=status.describe(),
            code_version=status.describe_head(),
        )


@asynccontextmanager
async def _alembic_to_ourselves() -> AsyncIterator[None]:
    # Polled: an asyncio.Event belongs to one loop, and waiting on the lock in a thread would leak
    # it to a cancelled waiter. Contention is rare (two migrations at once) and short.
    while not _ALEMBIC_IN_USE.acquire(blocking=False):  # noqa: ASYNC110
        await asyncio.sleep(0.005)
    try:
        yield
    finally:
        _ALEMBIC_IN_USE.release()


@asynccontextmanager
async def _migration_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction in which no other Penguin migrates the same database; committed on success."""
    async with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            async with conn.begin():
                if engine.dialect.name == "postgresql":
                    # Held to the end of the transaction: a second process waits here, then finds
                    # the database upgraded when it reads the state again.
                    await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_LOCK_KEY)))
                yield conn
            return
        # Python's sqlite3 would run DDL outside any transaction; in autocommit mode the
        # transaction is ours to open, and IMMEDIATE takes the write lock before the first read.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            with suppress(sa.exc.DBAPIError):  # SQLite may have rolled back already
                await conn.exec_driver_sql("ROLLBACK")
            raise
        await conn.exec_driver_sql("COMMIT")


def _where(status: SchemaStatus) -> str:
    return status.describe() if status.state is SchemaState.EMPTY else f"at {status.describe()}"


def _slug(message: str) -> str:
    words = re.findall(r"[a-z0-9]+", message.lower())
    if not words:
        raise ValidationFailed("a revision message needs a word or two (letters or digits)", field="message")
    return "_".join(words)[:40].rstrip("_")


def _safe_url(url: sa.URL | str) -> str:
    return make_url(url).render_as_string(hide_password=True)


__all__ = [
    "BASELINE",
    "MIGRATIONS_DIR",
    "OUTSIDE_METADATA",
    "PG_LOCK_KEY",
    "VERSIONS_DIR",
    "Migrations",
    "SchemaState",
    "SchemaStatus",
    "include_name",
    "refuse",
    "refuse_unusable",
    "schema_number",
]
