from __future__ import annotations

from pathlib import Path

import pytest

from penguin.config import Settings


def test_defaults_choose_local_model_without_keys(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert s.resolved_default_model() == "local:default"
    assert s.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'penguin.db'}"
    assert s.host == "127.0.0.1"


def test_env_vars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PENGUIN_MODEL", "openai:fake")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    monkeypatch.setenv("PENGUIN_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("PENGUIN_AGENTS_AUTO_CREATE", "false")
    s = Settings()
    assert s.resolved_default_model() == "openai:fake"
    assert s.openai_base_url == "http://127.0.0.1:9999/v1"
    assert s.data_dir == tmp_path / "d"
    assert s.auto_create_agents is False


def test_api_keys_pick_a_default_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert Settings().resolved_default_model() == "anthropic:claude-sonnet-4-5"
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    s = Settings()
    assert s.resolved_default_model() == "openai:gpt-4o-mini"
    assert s.public_dict()["openai_api_key"] == "***"


def test_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "penguin.toml").write_text('model = "scripted:echo"\nmax_iterations = 3\n')
    monkeypatch.chdir(tmp_path)
    s = Settings()
    assert s.model == "scripted:echo"
    assert s.max_iterations == 3
    monkeypatch.setenv("PENGUIN_MAX_ITERATIONS", "5")
    assert Settings().max_iterations == 5  # environment beats the file


def test_data_dir_created_on_demand(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path / "a" / "b")
    assert not s.data_dir.exists()
    s.ensure_data_dir()
    assert s.data_dir.is_dir()
