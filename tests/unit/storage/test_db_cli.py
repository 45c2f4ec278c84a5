"""``penguin db``: current, upgrade and history on real databases, and one-line refusals (exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from penguin.cli.main import app
from penguin.storage.migrate import BASELINE


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console entry point, as a user runs it (Rich wraps nothing into a second line)."""
    return subprocess.run(
        [sys.executable, "-m", "penguin.cli.main", *args],
        env={**os.environ, "PENGUIN_DATA_DIR": str(data_dir)},
        capture_output=True, text=True, timeout=120, cwd=data_dir,
    )


def test_current_upgrade_and_history_on_a_new_database(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PENGUIN_DATA_DIR": str(tmp_path)}
    url = f"sqlite+aiosqlite:///{tmp_path.resolve() / 'penguin.db'}"

    current = runner.invoke(app, ["db", "current"], env=env)
    assert current.exit_code == 0, current.output
    assert current.stdout.splitlines() == [
        f"database: {url}",
        "revision: empty (no Penguin tables yet)",
        f"penguin:  revision {BASELINE} (schema 1)",
        "status:   upgrade pending (Penguin runs it when it opens the database, or run `penguin db upgrade`)",
    ]
    assert not (tmp_path / "penguin.db").exists()  # looking does not create the file

    upgrade = runner.invoke(app, ["db", "upgrade"], env=env)
    assert upgrade.exit_code == 0, upgrade.output
    assert upgrade.stdout.strip() == (
        f"upgraded {url} from empty (no Penguin tables yet) to revision {BASELINE} (schema 1)")
    again = runner.invoke(app, ["db", "upgrade"], env=env)
    assert again.stdout.strip() == f"{url} is up to date: revision {BASELINE} (schema 1)"

    as_json = runner.invoke(app, ["db", "current", "--json"], env=env)
    assert json.loads(as_json.stdout) == {
        "database": url, "state": "current", "revision": BASELINE, "schema": 1,
        "head": BASELINE, "head_schema": 1, "upgrade_pending": False,
    }
    history = runner.invoke(app, ["db", "history"], env=env)
    assert history.stdout.splitlines()[0] == (
        f"{BASELINE}  Release 0.3.3's schema: the baseline every later revision builds on.  (head)")


def test_a_database_from_a_newer_penguin_is_refused_in_one_line_and_exit_2(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'penguin.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0009_from_the_future'"))
        conn.execute(sa.text("UPDATE penguin_schema SET version = 9"))
    engine.dispose()
    before = (tmp_path / "penguin.db").read_bytes()

    for args in (("db", "current"), ("db", "upgrade"), ("chat", "hello")):
        result = run(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        if args[0] == "db":  # the lead's commands print through their own console
            assert len(result.stderr.splitlines()) == 1, result.stderr
        error = result.stderr.replace("\n", " ")
        assert error.startswith("error: the database ") and "Traceback" not in error
        assert "revision 0009_from_the_future (schema 9)" in error
        assert f"revision {BASELINE} (schema 1)" in error
    serve = run(tmp_path, "serve", "--port", "1")
    assert serve.returncode == 2 and "Traceback" not in serve.stderr, serve.stderr
    assert "0009_from_the_future" in serve.stderr.replace("\n", " ")
    assert (tmp_path / "penguin.db").read_bytes() == before
