"""Misspelled settings are errors that name the key, where it came from and the closest valid one."""

from __future__ import annotations

from pathlib import Path

import pytest

from penguin import PenguinAgent, PenguinCore, Settings, UnknownSetting


def test_an_unknown_keyword_is_refused_with_the_closest_setting(tmp_path: Path) -> None:
    with pytest.raises(UnknownSetting) as refused:
        Settings(data_dir=tmp_path, modle="scripted:echo")
    assert refused.value.detail == "unknown setting 'modle' (keyword argument); did you mean 'model'?"
    assert refused.value.field == "modle"
    with pytest.raises(UnknownSetting, match="did you mean 'model'"):
        PenguinAgent(data_dir=tmp_path, modle="scripted:echo")
    with pytest.raises(UnknownSetting, match="'max_iteration' .*did you mean 'max_iterations'"):
        PenguinCore(Settings(data_dir=tmp_path), max_iteration=3)
    with pytest.raises(UnknownSetting, match="'zzzz' \\(keyword argument\\)$"):
        Settings(zzzz=1)  # nothing close: no suggestion


def test_an_unknown_penguin_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PENGUIN_MODLE", "scripted:echo")
    with pytest.raises(UnknownSetting) as refused:
        Settings()
    assert refused.value.detail == (
        "unknown setting 'PENGUIN_MODLE' (environment variable); did you mean 'PENGUIN_MODEL'?"
    )
    monkeypatch.delenv("PENGUIN_MODLE")
    # A setting whose variable has another name suggests that name.
    monkeypatch.setenv("PENGUIN_AUTO_CREATE_AGENTS", "false")
    with pytest.raises(UnknownSetting, match="did you mean 'PENGUIN_AGENTS_AUTO_CREATE'"):
        Settings()
    monkeypatch.delenv("PENGUIN_AUTO_CREATE_AGENTS")
    # Variables read by the CLI and the loader are not settings, and other programs' are not ours.
    monkeypatch.setenv("PENGUIN_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("PENGUIN_CONFIG", "missing.toml")
    monkeypatch.setenv("OTHER_MODLE", "x")
    monkeypatch.setenv("PENGUIN_AGENTS_AUTO_CREATE", "false")
    assert Settings().auto_create_agents is False


def test_an_unknown_toml_key_is_refused_naming_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "penguin.toml").write_text('model = "scripted:echo"\nmax_iteratoins = 3\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownSetting) as refused:
        Settings()
    assert refused.value.detail == (
        "unknown setting 'max_iteratoins' (key in penguin.toml); did you mean 'max_iterations'?"
    )
