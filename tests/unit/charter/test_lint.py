"""Placeholder lint: what halts a charter before any implementer works from it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from penguin.charter import Charter, Item, lint
from penguin.charter.lint import Problem
from penguin.tools.sandbox import Workspace

GOOD = Charter(goal="Add a --json flag", paths=("src/cli.py",), acceptance=(Item(id="AC1", text="prints JSON"),))


def codes(charter: Charter) -> list[tuple[str, str]]:
    return [(p.code, p.where) for p in lint(charter)]


def test_a_specific_charter_has_no_problems() -> None:
    assert lint(GOOD) == []


def test_an_empty_charter_names_every_missing_part() -> None:
    assert lint(Charter()) == [
        Problem(code="empty_goal", where="goal", message="the goal is empty; say what the task must achieve"),
        Problem(code="no_paths", where="paths",
                message="no paths; list the workspace files or folders the task touches"),
        Problem(code="no_acceptance", where="acceptance",
                message="no acceptance criteria; add '- [ ] AC1: <what must be true>' lines"),
    ]


@pytest.mark.parametrize("text", ["Pending", "pending", "PENDING", "Status: Pending review", "TBD", "see tbd",
                                  "todo: decide", "FIXME later", "which file???", "...", "<describe the goal>"])
def test_placeholders_are_flagged_in_the_goal(text: str) -> None:
    assert codes(Charter(goal=text, paths=GOOD.paths, acceptance=GOOD.acceptance)) == [("placeholder", "goal")]


@pytest.mark.parametrize("text", ["retry pending requests", "a < b and c > d", "the todos table is renamed",
                                  "to be decided: nothing"])
def test_ordinary_words_are_not_placeholders(text: str) -> None:
    assert lint(Charter(goal=text, paths=GOOD.paths, acceptance=GOOD.acceptance)) == []


def test_placeholders_in_items_and_paths_are_located() -> None:
    charter = Charter(goal="Ship", paths=("src/TBD.py",),
                      acceptance=(Item(id="AC1", text="Pending"),), checklist=(Item(id="QA1", text="???"),))
    assert codes(charter) == [("placeholder", "path src/TBD.py"), ("placeholder", "item AC1"),
                              ("placeholder", "item QA1")]


@pytest.mark.parametrize("path", ["/etc/passwd", "~/x", "../outside", "a/../../b", "C:/x"])
def test_escaping_paths_are_problems(path: str) -> None:
    charter = Charter(goal="Ship", paths=(path,), acceptance=GOOD.acceptance)
    assert [p.code for p in lint(charter)] == ["escaping_path"]


def test_a_symlink_out_of_the_workspace_is_caught_when_the_workspace_is_given(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws")
    os.symlink(tmp_path, workspace.root / "out")
    charter = Charter(goal="Ship", paths=("out/secret",), acceptance=GOOD.acceptance)
    assert lint(charter) == []
    assert [(p.code, p.message) for p in lint(charter, workspace=workspace)] == [
        ("escaping_path", "the path resolves outside the workspace through a symlink")]
