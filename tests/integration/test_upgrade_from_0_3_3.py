"""A database made by release 0.3.3 opens with this code, keeps every row, and is usable.

The fixtures in ``tests/fixtures/release_0_3_3`` were made by the 0.3.3 code itself (its
``make_fixture.py`` says how, and lists what they hold): a SQLite file, and a PostgreSQL dump
loaded here into a new database. Each test works on a copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from penguin import PenguinCore
from penguin.errors import MigrationRequired
from penguin.storage.database import Database
from penguin.storage.migrate import BASELINE, SchemaState

FIXTURES = Path(__file__).parents[1] / "fixtures" / "release_0_3_3"
#: Every table release 0.3.3 made.
RELEASE_TABLES = (
    "penguin_schema", "agents", "conversations", "messages", "checkpoints", "tasks", "kv",
    "envelopes", "receipts", "memories", "memory_tags", "memory_vectors",
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def release_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A copy of the 0.3.3 database: the SQLite file, or the PostgreSQL dump loaded into a new database."""
    if request.param == "sqlite":
        shutil.copy(FIXTURES / "penguin-0.3.3.sqlite", tmp_path / "penguin.db")
        yield f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}"
        return
    url: str = request.getfixturevalue("new_pg_database")
    # psql meta-commands (pg_dump's \restrict guard) are not SQL; everything else loads as it is.
    dump = "\n".join(
        line for line in (FIXTURES / "penguin-0.3.3.postgres.sql").read_text().splitlines() if not line.startswith("\\")
    )
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(dump)
    finally:
        await conn.close()
    yield url


async def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every 0.3.3 table (and of the SQLite keyword index), in a stable order."""

    def read(conn: sa.Connection) -> dict[str, list[tuple[Any, ...]]]:
        queries = {table: f"SELECT * FROM {table}" for table in RELEASE_TABLES}
        if conn.dialect.name == "sqlite":
            queries["memory_fts"] = "SELECT rowid, memory_id, text FROM memory_fts"
        return {name: sorted((tuple(row) for row in conn.execute(sa.text(sql))), key=repr)
                for name, sql in queries.items()}

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(read)
    finally:
        await engine.dispose()


async def test_every_row_of_a_0_3_3_database_survives_the_upgrade(release_url: str) -> None:
    before = await snapshot(release_url)
    assert {table: len(rows) for table, rows in before.items() if table != "memory_fts"} == {
        "penguin_schema": 1, "agents": 6, "conversations": 6, "messages": 40, "checkpoints": 1, "tasks": 1,
        "kv": 6, "envelopes": 47, "receipts": 5, "memories": 3, "memory_tags": 4, "memory_vectors": 0,
    }
    db = Database(release_url)
    try:
        assert (await db.migrations.status(db.engine)).state is SchemaState.UNVERSIONED
        status = await db.create_schema()
    finally:
        await db.aclose()
    assert (status.state, status.revision, status.schema) == (SchemaState.CURRENT, BASELINE, 1)
    assert await snapshot(release_url) == before


async def test_a_0_3_3_database_is_all_there_and_usable(release_url: str, tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=release_url, model="scripted:echo") as core:
        # Agents, with every spec field 0.3.3 stored.
        assert sorted(a.agent_id for a in core.list_agents()) == [
            "default", "helper", "planner", "reviewer2", "sleeper", "writer"]
        planner = core.get_agent("planner")
        assert (planner.system_prompt, planner.roles, planner.model) == (
            "You plan releases.", ("planner", "reviewer"), "scripted:echo")
        assert planner.model_parameters == {"chunk": 4, "temperature": 0.2} and planner.context_tokens == 8000
        assert planner.tool_policy.deny == ("run_shell",) and planner.tool_policy.rate_per_minute == 30
        assert planner.tool_policy.require_approval == ("edit_file",)
        assert planner.metadata == {"team": "release", "since": 2024}
        assert core.get_agent("sleeper").paused and core.get_agent("helper").parent_id == "planner"
        assert core.get_agent("writer").model_parameters["tool"] == "write_file"

        # Conversations: main, the rollback's archive, a branch, a task's; messages in seq order.
        convs = {c.kind: c for c in await core.list_conversations("planner")}
        assert sorted(convs) == ["archive", "branch", "main", "task"]
        main = await core.history("planner")
        assert [(m.seq, m.role, m.content) for m in main[:6]] == [
            (1, "user", "plan the 0.3.3 release"), (2, "assistant", "plan the 0.3.3 release"),
            (3, "user", "list the risks"), (4, "assistant", "list the risks"),
            (5, "user", "after the rollback"), (6, "assistant", "after the rollback"),
        ]
        assert [m.seq for m in main] == list(range(1, 11))
        archive = await core.history(conversation_id=convs["archive"].id)
        assert [m.content for m in archive if m.role == "user"][-2:] == ["detour one", "detour two"]
        assert convs["branch"].title == "what-if" and convs["branch"].parent_id == convs["main"].id
        branch = await core.history(conversation_id=convs["branch"].id)
        assert branch[-1].content == "what if we ship friday"

        # A tool call and its result, as the engine recorded them.
        writer = await core.history("writer")
        call, result = writer[1], writer[2]
        assert call.tool_calls is not None and call.tool_calls[0]["function"]["name"] == "write_file"
        arguments = json.loads(call.tool_calls[0]["function"]["arguments"])
        assert arguments == {"path": "notes/release.md", "content": "# 0.3.3"}
        assert (result.role, result.tool_call_id, result.content) == (
            "tool", call.tool_calls[0]["id"], "wrote 7 bytes to notes/release.md")

        # Checkpoint, memories, bus, rooms, roles, tasks.
        [checkpoint] = await core.list_checkpoints(agent_id="planner")
        assert (checkpoint.name, checkpoint.seq, checkpoint.conversation_id) == ("draft-1", 4, convs["main"].id)
        hits = await core.memory_search("when does the deploy key rotate", agent_id="writer")
        assert hits and hits[0].memory.text == "The deploy key rotates every 90 days"
        assert hits[0].memory.tags == ("ops", "security") and hits[0].memory.author == "planner"
        assert [m.text for m in await core.memory_list(agent_id="planner", scope="agent")] == [
            "planner prefers short release notes"]
        assert await core.memory_list(agent_id="writer", scope="agent") == []
        [sent] = [e for e in await core.list_messages(sender="planner", recipient="writer")
                  if e.content == "please draft the notes"]
        assert sent.channel == "release"
        assert (await core.get_receipt(sent.id, "writer")).status.value == "processed"
        processed = await core.list_receipts(status="processed")
        assert len(processed) == 4 and all(r.reply_id for r in processed)
        [waiting] = await core.list_receipts(recipient="sleeper")
        assert waiting.status.value == "queued"
        assert core.get_room("release").members == ("planner", "writer")
        posts = [(e.sender, e.content) for e in await core.room_history("release", message_type="message")
                 if e.recipient is None]
        assert posts == [("planner", "standup at 10"), ("writer", "wrote 7 bytes to notes/release.md")]
        assert core.roles() == {"reviewer": ["planner", "reviewer2"]}
        [task] = await core.list_tasks(agent_id="planner")
        assert (task.prompt, task.status.value, task.conversation_id) == (
            "summarize the week", "completed", convs["task"].id)

        # Usable: the next turn goes on at the next seq, the round-robin cursor resumes, rollback
        # to the old checkpoint works, new memories are found with the old, the paused agent's
        # queued message is processed once it resumes.
        reply = await core.chat("after the upgrade", agent_id="planner")
        assert reply.conversation_id == convs["main"].id
        assert [m.seq for m in (await core.history("planner"))[-2:]] == [11, 12]
        assert core.agent_for_role("reviewer").agent_id == "reviewer2"
        rolled, archived = await core.rollback(checkpoint.id)
        assert rolled.id == convs["main"].id and archived is not None
        assert [m.seq for m in await core.history("planner")] == [1, 2, 3, 4]
        await core.memory_add("the deploy key is stored in the vault", agent_id="writer", tags=["ops"])
        texts = {h.memory.text for h in await core.memory_search("deploy key", agent_id="writer", k=5)}
        assert texts == {"The deploy key rotates every 90 days", "the deploy key is stored in the vault"}
        await core.resume_agent("sleeper")
        done = await core.wait_receipt(waiting.message_id, "sleeper", timeout=30)
        assert done.status.value == "processed"
        assert (await core.history("sleeper"))[-1].content == "wake up when you can"


def _penguin(data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "penguin.cli.main", *args],
        env={**os.environ, "PENGUIN_DATA_DIR": str(data_dir), **env},
        capture_output=True, text=True, timeout=120, cwd=data_dir,
    )


async def test_with_auto_migrate_off_a_0_3_3_database_waits_for_penguin_db_upgrade(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "penguin-0.3.3.sqlite", tmp_path / "penguin.db")
    url = f"sqlite+aiosqlite:///{tmp_path / 'penguin.db'}"
    with pytest.raises(MigrationRequired, match="penguin db upgrade") as refused:
        await PenguinCore(data_dir=tmp_path, database_url=url, model="scripted:echo", auto_migrate=False).start()
    assert "schema 1 (made before migrations" in refused.value.detail

    current = _penguin(tmp_path, "db", "current", PENGUIN_AUTO_MIGRATE="false")
    assert current.returncode == 0, current.stderr
    assert "upgrade pending (PENGUIN_AUTO_MIGRATE=false: run `penguin db upgrade`)" in current.stdout
    serve = _penguin(tmp_path, "serve", "--port", "1", PENGUIN_AUTO_MIGRATE="false")
    assert serve.returncode == 2 and "Traceback" not in serve.stderr, serve.stderr
    assert "penguin db upgrade" in serve.stderr.replace("\n", " ")

    upgrade = _penguin(tmp_path, "db", "upgrade", PENGUIN_AUTO_MIGRATE="false")
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.strip() == (
        f"upgraded {url} from schema 1 (made before migrations, by Penguin 0.3.3 or older) "
        f"to revision {BASELINE} (schema 1)"
    )
    async with PenguinCore(data_dir=tmp_path, database_url=url, model="scripted:echo", auto_migrate=False) as core:
        assert len(core.list_agents()) == 6
