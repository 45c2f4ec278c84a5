"""Migrations on real SQLite and PostgreSQL: creating, adopting, upgrading and refusing databases.

Every test starts from a database without any table (``empty_database_url``). Databases older
than the package are made with raw SQL as those builds made them; a newer code's revision is
rehearsed with a revision file only these tests have (``0002_widgets``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

import penguin.memory.schema  # noqa: F401  (the memory tables are part of the schema)
from penguin import PenguinCore
from penguin.errors import MigrationFailed, MigrationRequired, SchemaTooNew, SchemaUnrecognized
from penguin.storage.database import Database
from penguin.storage.migrate import (
    BASELINE,
    VERSIONS_DIR,
    Migrations,
    SchemaState,
    SchemaStatus,
    include_name,
    schema_number,
)
from penguin.storage.schema import metadata

T = TypeVar("T")

WIDGETS = '''"""Widgets: a revision only the tests have, standing for the next release's."""

import sqlalchemy as sa
from alembic import op

revision = "0002_widgets"
down_revision = "0001_release_0_3_3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("widgets", sa.Column("id", sa.Integer, primary_key=True))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("color", sa.String(16), nullable=True))
'''


@pytest.fixture
def next_release(tmp_path: Path) -> Migrations:
    """The package's revisions plus ``0002_widgets``."""
    extra = tmp_path / "next_versions"
    extra.mkdir()
    (extra / "0002_widgets.py").write_text(WIDGETS)
    return Migrations((VERSIONS_DIR, extra))


async def on(url: str, work: Callable[[sa.Connection], T]) -> T:
    """Run ``work`` on a connection of its own and commit."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


async def opened(url: str, **options: Any) -> SchemaStatus:
    db = Database(url, **options)
    try:
        return await db.create_schema()
    finally:
        await db.aclose()


def schema_diff(conn: sa.Connection) -> list[Any]:
    """What Alembic's autogenerate finds between the database and ``metadata``."""
    context = MigrationContext.configure(conn, opts={"include_name": include_name, "compare_type": True})
    return list(compare_metadata(context, metadata))


def versions(conn: sa.Connection) -> tuple[list[str], list[str], list[int]]:
    """Table names, ``alembic_version`` and ``penguin_schema``, to show a database was not touched."""
    tables = sorted(sa.inspect(conn).get_table_names())
    def column(table: str, name: str) -> list[Any]:
        return list(conn.execute(sa.text(f"SELECT {name} FROM {table} ORDER BY {name}")).scalars()) if (
            table in tables) else []

    return tables, column("alembic_version", "version_num"), column("penguin_schema", "version")


def keyword_index(conn: sa.Connection) -> bool:
    if conn.dialect.name == "sqlite":
        return "memory_fts" in sa.inspect(conn).get_table_names()
    return "ix_memories_fts" in {ix["name"] for ix in sa.inspect(conn).get_indexes("memories")}


async def test_an_empty_database_is_made_by_the_migrations_and_equals_the_metadata(empty_database_url: str) -> None:
    status = await opened(empty_database_url)
    assert status == SchemaStatus(state=SchemaState.CURRENT, revision=BASELINE, schema=1, head=BASELINE)
    assert await on(empty_database_url, schema_diff) == []
    assert await on(empty_database_url, keyword_index)
    tables, revisions, schema = await on(empty_database_url, versions)
    assert set(metadata.tables) <= set(tables)
    assert (revisions, schema) == ([BASELINE], [1])
    # The comparison is not blind: a column the metadata has and no revision made is found.
    drifted = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["agents"].append_column(sa.Column("nickname", sa.String(40)))

    def drift(conn: sa.Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        return list(compare_metadata(context, drifted))

    assert [d[0] for d in await on(empty_database_url, drift)] == ["add_column"]


def test_revisions_are_one_numbered_line_named_like_their_files() -> None:
    migrations = Migrations()
    script = ScriptDirectory.from_config(migrations.config())
    walked = list(reversed(list(script.walk_revisions())))
    assert [r.revision for r in walked] == list(migrations.revisions)
    assert [schema_number(r.revision) for r in walked] == list(range(1, len(walked) + 1))
    assert [r.down_revision for r in walked] == [None, *migrations.revisions[:-1]]
    assert script.get_heads() == [migrations.head]
    for r in walked:
        assert r.path is not None and Path(r.path).name == f"{r.revision}.py"
    assert migrations.revisions[0] == BASELINE


def test_a_second_open_reads_the_version_without_loading_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}"
    asyncio.run(opened(url))
    code = (
        "import asyncio, sys\n"
        "from penguin.storage.database import Database\n"
        "async def main():\n"
        f"    db = Database({url!r})\n"
        "    print((await db.create_schema()).state.value)\n"
        "    await db.aclose()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split("\n")[:2] == ["current", "[]"]


@pytest.mark.parametrize("stamp", ["unknown revision", "penguin_schema 99"])
async def test_a_newer_database_is_refused_and_left_untouched(empty_database_url: str, stamp: str) -> None:
    await opened(empty_database_url)

    def make_newer(conn: sa.Connection) -> None:
        if stamp == "unknown revision":
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '0042_from_the_future'"))
            conn.execute(sa.text("UPDATE penguin_schema SET version = 42"))
        else:  # as release 0.3.3 left it, with a version only a newer Penguin could have written
            conn.execute(sa.text("DROP TABLE alembic_version"))
            conn.execute(sa.text("UPDATE penguin_schema SET version = 99"))

    await on(empty_database_url, make_newer)
    before = await on(empty_database_url, versions)
    for auto_migrate in (True, False):
        with pytest.raises(SchemaTooNew) as refused:
            await opened(empty_database_url, auto_migrate=auto_migrate)
        detail = refused.value.detail
        expected = "revision 0042_from_the_future (schema 42)" if stamp == "unknown revision" else "schema 99"
        assert expected in detail and f"revision {BASELINE} (schema 1)" in detail, detail
        assert "Nothing was changed" in detail and refused.value.status == 409
    db = Database(empty_database_url)
    try:
        with pytest.raises(SchemaTooNew):
            await db.migrations.upgrade(db.engine)
    finally:
        await db.aclose()
    assert await on(empty_database_url, versions) == before


async def test_auto_migrate_off_refuses_an_older_database_until_it_is_upgraded(
    empty_database_url: str, next_release: Migrations
) -> None:
    await opened(empty_database_url)  # the package's schema: one revision behind next_release
    db = Database(empty_database_url, auto_migrate=False, migrations=next_release)
    try:
        with pytest.raises(MigrationRequired) as refused:
            await db.create_schema()
        detail = refused.value.detail
        assert f"revision {BASELINE} (schema 1)" in detail and "revision 0002_widgets (schema 2)" in detail
        assert "penguin db upgrade" in detail and "PENGUIN_AUTO_MIGRATE" in detail
        assert (await on(empty_database_url, versions))[1:] == ([BASELINE], [1])

        before, after = await next_release.upgrade(db.engine)
        assert (before.state, before.revision) == (SchemaState.BEHIND, BASELINE)
        assert after == SchemaStatus(state=SchemaState.CURRENT, revision="0002_widgets", schema=2, head="0002_widgets")
        assert (await db.create_schema()).state is SchemaState.CURRENT  # auto_migrate off, nothing to do
    finally:
        await db.aclose()

    def widgets(conn: sa.Connection) -> tuple[bool, list[str]]:
        inspector = sa.inspect(conn)
        return inspector.has_table("widgets"), [c["name"] for c in inspector.get_columns("agents")]

    has_widgets, agent_columns = await on(empty_database_url, widgets)
    assert has_widgets and "color" in agent_columns
    # The package's code, one release behind, now refuses it.
    with pytest.raises(SchemaTooNew, match="0002_widgets"):
        await opened(empty_database_url)


async def test_an_older_database_is_upgraded_when_opened(empty_database_url: str, next_release: Migrations) -> None:
    await opened(empty_database_url)
    status = await opened(empty_database_url, migrations=next_release)
    assert (status.state, status.revision, status.schema) == (SchemaState.CURRENT, "0002_widgets", 2)


BROKEN = WIDGETS.replace("0002_widgets", "0002_broken").replace(
    "        batch.add_column(sa.Column(\"color\", sa.String(16), nullable=True))",
    "        batch.add_column(sa.Column(\"color\", sa.String(16), nullable=True))\n"
    "    op.execute(\"INSERT INTO no_such_table VALUES (1)\")",
)


async def test_a_failed_upgrade_changes_nothing(empty_database_url: str, tmp_path: Path) -> None:
    await opened(empty_database_url)
    before = await on(empty_database_url, versions)
    extra = tmp_path / "broken_versions"
    extra.mkdir()
    (extra / "0002_broken.py").write_text(BROKEN)
    with pytest.raises(MigrationFailed, match="no_such_table") as failed:
        await opened(empty_database_url, migrations=Migrations((VERSIONS_DIR, extra)))
    assert f"from revision {BASELINE} (schema 1) to revision 0002_broken (schema 2)" in failed.value.detail
    assert "rolled back, so nothing was changed" in failed.value.detail
    # The widgets table and the agents column made before the failing statement were rolled back.
    assert await on(empty_database_url, versions) == before
    assert await on(empty_database_url, schema_diff) == []
    assert (await opened(empty_database_url)).state is SchemaState.CURRENT


# A development database from before commit 49ef1d6: agents keyed by agent_id alone, with the
# tenant indexed; no bus or memory tables yet. Portable DDL, as SQLAlchemy emitted it then.
PLANNER_SPEC = '{"agent_id": "planner", "system_prompt": "Plans.", "roles": ["planner"], "tenant_id": "default"}'
PRE_TENANT = [
    "CREATE TABLE penguin_schema (version {serial} NOT NULL, PRIMARY KEY (version))",
    "INSERT INTO penguin_schema (version) VALUES (1)",
    "CREATE TABLE agents (agent_id VARCHAR(64) NOT NULL, tenant_id VARCHAR(64) NOT NULL, spec TEXT NOT NULL, "
    "created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (agent_id))",
    "CREATE INDEX ix_agents_tenant_id ON agents (tenant_id)",
    "CREATE TABLE conversations (id VARCHAR(64) NOT NULL, tenant_id VARCHAR(64) NOT NULL, "
    "agent_id VARCHAR(64) NOT NULL, title VARCHAR(200) NOT NULL, parent_id VARCHAR(64), checkpoint_id VARCHAR(64), "
    "kind VARCHAR(16) NOT NULL, run_mode VARCHAR(16) NOT NULL, last_seq INTEGER NOT NULL, metadata TEXT NOT NULL, "
    "created_at FLOAT NOT NULL, updated_at FLOAT NOT NULL, PRIMARY KEY (id))",
    "CREATE INDEX ix_conversations_agent ON conversations (agent_id, updated_at)",
    "CREATE TABLE messages (id VARCHAR(64) NOT NULL, tenant_id VARCHAR(64) NOT NULL, "
    "conversation_id VARCHAR(64) NOT NULL, seq INTEGER NOT NULL, agent_id VARCHAR(64) NOT NULL, "
    "sender VARCHAR(80) NOT NULL, recipient_id VARCHAR(80), role VARCHAR(16) NOT NULL, "
    "message_type VARCHAR(32) NOT NULL, channel VARCHAR(80), content TEXT NOT NULL, tool_calls TEXT, "
    "tool_call_id VARCHAR(128), name VARCHAR(128), usage TEXT, turn_id VARCHAR(64), metadata TEXT, "
    "created_at FLOAT NOT NULL, PRIMARY KEY (id), "
    "CONSTRAINT uq_messages_conversation_seq UNIQUE (conversation_id, seq))",
    "INSERT INTO agents VALUES ('planner', 'default', '" + PLANNER_SPEC + "', 1700000000.0, 1700000001.0)",
    """INSERT INTO conversations VALUES ('conv_old', 'default', 'planner', '', NULL, NULL, 'main', 'chat', 2, '{}', """
    "1700000000.0, 1700000001.0)",
    "INSERT INTO messages (id, tenant_id, conversation_id, seq, agent_id, sender, role, message_type, content, "
    "created_at) VALUES ('msg_1', 'default', 'conv_old', 1, 'planner', 'human', 'user', 'message', 'old question', "
    "1700000000.5)",
    "INSERT INTO messages (id, tenant_id, conversation_id, seq, agent_id, sender, role, message_type, content, "
    "created_at) VALUES ('msg_2', 'default', 'conv_old', 2, 'planner', 'planner', 'assistant', 'message', "
    "'old answer', 1700000000.6)",
]


async def test_a_pre_tenant_development_database_is_rekeyed_and_keeps_its_rows(
    empty_database_url: str, tmp_path: Path
) -> None:
    def build(conn: sa.Connection) -> None:
        serial = "SERIAL" if conn.dialect.name == "postgresql" else "INTEGER"
        for statement in PRE_TENANT:
            conn.execute(sa.text(statement.replace("{serial}", serial)))

    await on(empty_database_url, build)
    status = await opened(empty_database_url)
    assert (status.state, status.revision, status.schema) == (SchemaState.CURRENT, BASELINE, 1)
    assert await on(empty_database_url, schema_diff) == []

    def agents_key(conn: sa.Connection) -> tuple[list[str], list[str], list[tuple[Any, ...]]]:
        inspector = sa.inspect(conn)
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT tenant_id, agent_id, created_at FROM agents"))]
        return inspector.get_pk_constraint("agents")["constrained_columns"], [
            ix["name"] for ix in inspector.get_indexes("agents")], rows

    assert await on(empty_database_url, agents_key) == (
        ["tenant_id", "agent_id"], [], [("default", "planner", 1700000000.0)])
    async with PenguinCore(data_dir=tmp_path, database_url=empty_database_url, model="scripted:echo") as core:
        assert core.get_agent("planner").system_prompt == "Plans."
        assert [(m.seq, m.content) for m in await core.history("planner")] == [(1, "old question"), (2, "old answer")]
        reply = await core.chat("new question", agent_id="planner")
        assert reply.conversation_id == "conv_old"
    # The crash this key prevents: another tenant's agent of the same name.
    async with PenguinCore(
        data_dir=tmp_path, database_url=empty_database_url, model="scripted:echo", tenant_id="acme"
    ) as core:
        assert (await core.create_agent("planner", system_prompt="Acme's planner")).tenant_id == "acme"


async def test_penguin_tables_without_a_schema_version_are_refused(empty_database_url: str) -> None:
    def build(conn: sa.Connection) -> None:
        conn.execute(sa.text("CREATE TABLE agents (agent_id VARCHAR(64) PRIMARY KEY, spec TEXT)"))

    await on(empty_database_url, build)
    with pytest.raises(SchemaUnrecognized, match="no schema version") as refused:
        await opened(empty_database_url)
    assert "revision 0001_release_0_3_3" in refused.value.detail
    assert (await on(empty_database_url, versions))[0] == ["agents"]


async def test_concurrent_opens_of_one_empty_database_migrate_it_once(empty_database_url: str) -> None:
    databases = [Database(empty_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(db.migrations.upgrade(db.engine) for db in databases[:3]))
        migrated = sorted(before.state.value for before, _ in results)
        assert migrated == ["current", "current", "empty"]
        assert {after.state for _, after in results} == {SchemaState.CURRENT}
        # And through the front door, as two cores starting at once would.
        statuses = await asyncio.gather(databases[3].create_schema(), databases[0].create_schema())
        assert {s.state for s in statuses} == {SchemaState.CURRENT}
    finally:
        for db in databases:
            await db.aclose()
    assert (await on(empty_database_url, versions))[1:] == ([BASELINE], [1])


async def test_migrations_of_different_databases_in_one_process_take_turns(tmp_path: Path) -> None:
    # Alembic's op/context are process-wide: two cores starting at once on new files broke each other.
    urls = [f"sqlite+aiosqlite:///{tmp_path / f'{i}.db'}" for i in range(3)]
    statuses = await asyncio.gather(*(opened(url) for url in urls))
    assert [s.state for s in statuses] == [SchemaState.CURRENT] * 3
    for url in urls:
        assert await on(url, schema_diff) == []


MIGRATE_ON_GO = """
import asyncio, sys
import alembic.command  # loaded before "ready", so both processes reach the database together
from penguin.storage.database import Database
async def main(url):
    db = Database(url)
    print("ready", flush=True)
    sys.stdin.readline()
    before, after = await db.migrations.upgrade(db.engine)
    print(before.state.value, after.state.value, flush=True)
    await db.aclose()
asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.postgres
@pytest.mark.parametrize("empty_database_url", ["postgres"], indirect=True)
async def test_two_processes_opening_one_empty_postgres_database_migrate_it_once(empty_database_url: str) -> None:
    url = empty_database_url
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", MIGRATE_ON_GO, url,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and await proc.stdout.readline() == b"ready\n"
        for proc in procs:  # the advisory lock makes one wait for the other, which then finds nothing to do
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        outputs = sorted([(await proc.communicate())[0].decode().strip() for proc in procs])
        assert [proc.returncode for proc in procs] == [0, 0]
        assert outputs == ["current current", "empty current"]
        assert (await on(url, versions))[1:] == ([BASELINE], [1])
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_write_revision_names_the_file_by_its_number_and_finds_no_drift(tmp_path: Path) -> None:
    versions_dir = tmp_path / "versions"
    versions_dir.mkdir()
    (versions_dir / f"{BASELINE}.py").write_text((VERSIONS_DIR / f"{BASELINE}.py").read_text())
    migrations = Migrations((versions_dir,))
    path = migrations.write_revision("Add widgets, please!", autogenerate=True)
    assert path == versions_dir / "0002_add_widgets_please.py"
    assert migrations.head == "0002_add_widgets_please"
    text = path.read_text()
    assert 'revision = "0002_add_widgets_please"' in text.replace("'", '"')
    assert 'down_revision = "0001_release_0_3_3"' in text.replace("'", '"')
    # metadata and the revisions agree, so autogenerate has nothing to add.
    body = text.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    assert [line.strip() for line in body.splitlines() if line.strip() and "#" not in line] == ["pass"], body
