"""The task charter as plain data: goal, paths, acceptance criteria, QA checklist, changes, verdict.

A ``Charter`` is the single source of truth a planner, an implementer and a QA agent share for one
task (``context/TASK_CHARTER.md`` and ``.json`` in the workspace). Every value is frozen; a change
is a new charter (``dataclasses.replace``), and only ``penguin.charter.gate`` moves ``state``.

Text fields are one line each (the goal may span lines) and are stripped when built, so the
Markdown form round-trips exactly: ``parse(render(c)) == c``. Paths are cleaned lexically
(``./a//b/`` becomes ``a/b``) but not refused here: a path that escapes the workspace is a *lint
problem* the planner must fix, reported by ``penguin.charter.lint`` rather than hidden by a parse
error, so the parent sees every problem at once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from penguin.errors import ValidationFailed

#: Item ids: a letter, then up to 31 of ``A-Z a-z 0-9 _ . -`` (``AC1``, ``QA-2``).
ITEM_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")
#: Authors and reviewers: an agent id or ``human``.
AUTHOR = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_TEXT_CHARS = 4000


class GateState(StrEnum):
    """Where a charter is in the planner → implementer → QA gate (see ``penguin.charter.gate``)."""

    DRAFT = "draft"
    READY = "ready"
    IMPLEMENTING = "implementing"
    IN_QA = "in_qa"
    APPROVED = "approved"
    CHANGES_REQUESTED = "changes_requested"


Decision = Literal["approved", "changes_requested"]


def clean_line(value: object, what: str, *, allow_empty: bool = True) -> str:
    """Strip a one-line text field and refuse newlines, control characters and huge values."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{what} must be a string", field=what)
    text = value.strip()
    if "\n" in text or "\r" in text or _CONTROL.search(text):
        raise ValidationFailed(f"{what} must be one line without control characters: {text[:60]!r}", field=what)
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationFailed(f"{what} is longer than {MAX_TEXT_CHARS} characters", field=what)
    if not text and not allow_empty:
        raise ValidationFailed(f"{what} must not be empty", field=what)
    return text


def clean_goal(value: object) -> str:
    """The goal: stripped, lines right-stripped, no line may start with ``#`` (it would end the section)."""
    if not isinstance(value, str):
        raise ValidationFailed("goal must be a string", field="goal")
    lines = [line.rstrip() for line in value.replace("\r\n", "\n").strip().split("\n")]
    for line in lines:
        if _CONTROL.search(line) or "\r" in line:
            raise ValidationFailed("goal must not contain control characters", field="goal")
        if line.lstrip().startswith("#"):
            raise ValidationFailed(f"a goal line must not start with '#': {line[:60]!r}", field="goal")
    text = "\n".join(lines)
    if len(text) > MAX_TEXT_CHARS * 4:
        raise ValidationFailed(f"goal is longer than {MAX_TEXT_CHARS * 4} characters", field="goal")
    return text


def clean_path(value: object) -> str:
    """Lexically tidy a workspace path: backslashes, ``.`` and empty components go, nothing else does.

    ``..``, absolute and ``~`` paths are kept as written so that lint can name them.
    """
    raw = clean_line(value, "path", allow_empty=False)
    lead = "/" if raw.startswith(("/", "\\")) else ""
    parts = [p for p in raw.replace("\\", "/").split("/") if p not in ("", ".")]
    return (lead + "/".join(parts)) or "."


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not ITEM_ID.match(value):
        raise ValidationFailed(f"{what} {value!r} is not an item id: a letter, then up to 31 of A-Z a-z 0-9 _ . -",
                               field=what)
    return value


def _check_author(value: object, what: str) -> str:
    if not isinstance(value, str) or not AUTHOR.match(value):
        raise ValidationFailed(f"{what} {value!r} must be an agent id or 'human'", field=what)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One acceptance criterion or QA checklist entry."""

    #: Stable id QA marks done with ``[x] <id>``; unique across the whole charter.
    id: str
    #: What must be true, in one line.
    text: str
    #: True once QA has checked it.
    done: bool = False
    #: How it was checked (one line; "" = not recorded).
    evidence: str = ""

    def __post_init__(self) -> None:
        _check_id(self.id, "item id")
        object.__setattr__(self, "text", clean_line(self.text, f"text of {self.id}", allow_empty=False))
        object.__setattr__(self, "evidence", clean_line(self.evidence, f"evidence of {self.id}"))
        if not isinstance(self.done, bool):
            raise ValidationFailed(f"done of {self.id} must be true or false", field="done")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "done": self.done, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Item:
        return cls(id=data.get("id", ""), text=data.get("text", ""), done=data.get("done", False),
                   evidence=data.get("evidence", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One entry of the implementer's log: what changed and how it was verified."""

    #: The agent (or ``human``) that made the change.
    author: str
    #: What changed, in one line.
    summary: str
    #: How it was verified, in one line ("" = not verified).
    verification: str = ""

    def __post_init__(self) -> None:
        _check_author(self.author, "change author")
        object.__setattr__(self, "summary", clean_line(self.summary, "change summary", allow_empty=False))
        object.__setattr__(self, "verification", clean_line(self.verification, "change verification"))

    def to_dict(self) -> dict[str, Any]:
        return {"author": self.author, "summary": self.summary, "verification": self.verification}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(author=data.get("author", ""), summary=data.get("summary", ""),
                   verification=data.get("verification", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """QA's last decision on the charter."""

    decision: Decision
    #: The QA agent (or ``human``) that decided.
    reviewer: str
    #: Why changes are requested ("" for an approval).
    reason: str = ""

    def __post_init__(self) -> None:
        if self.decision not in ("approved", "changes_requested"):
            raise ValidationFailed(f"verdict decision {self.decision!r} must be approved or changes_requested",
                                   field="verdict")
        _check_author(self.reviewer, "verdict reviewer")
        object.__setattr__(self, "reason", clean_line(self.reason, "verdict reason"))

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reviewer": self.reviewer, "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(decision=data.get("decision", ""), reviewer=data.get("reviewer", ""),
                   reason=data.get("reason", ""))


@dataclass(frozen=True, slots=True, kw_only=True)
class Charter:
    """One task's charter. Build changed copies with ``dataclasses.replace`` (fields are re-checked)."""

    #: What the task must achieve (may span lines; "" = not written yet, a lint problem).
    goal: str = ""
    #: Workspace-relative paths the task touches, cleaned by ``clean_path``, in order, no duplicates.
    paths: tuple[str, ...] = ()
    #: What must be true for the task to be done.
    acceptance: tuple[Item, ...] = ()
    #: What QA checks beyond the acceptance criteria (may be empty).
    checklist: tuple[Item, ...] = ()
    #: The implementer's log, oldest first.
    changes: tuple[Change, ...] = ()
    #: QA's latest decision (None until QA has decided once).
    verdict: Verdict | None = None
    #: The gate state; only ``CharterGate`` changes it.
    state: GateState = GateState.DRAFT

    def __post_init__(self) -> None:
        object.__setattr__(self, "goal", clean_goal(self.goal))
        paths = tuple(dict.fromkeys(clean_path(p) for p in self.paths))
        object.__setattr__(self, "paths", paths)
        object.__setattr__(self, "acceptance", tuple(self.acceptance))
        object.__setattr__(self, "checklist", tuple(self.checklist))
        object.__setattr__(self, "changes", tuple(self.changes))
        object.__setattr__(self, "state", GateState(self.state))
        seen: set[str] = set()
        for item in self.items:
            if item.id in seen:
                raise ValidationFailed(f"item id {item.id!r} is used twice; give every criterion its own id",
                                       field="items")
            seen.add(item.id)

    @property
    def items(self) -> tuple[Item, ...]:
        """Acceptance criteria then checklist entries: everything QA must mark done."""
        return self.acceptance + self.checklist

    @property
    def open_items(self) -> tuple[str, ...]:
        """Ids of the items not yet marked done."""
        return tuple(item.id for item in self.items if not item.done)

    def find(self, item_id: str) -> Item | None:
        return next((item for item in self.items if item.id == item_id), None)

    def with_item(self, item: Item) -> Charter:
        """A copy with the item of the same id replaced."""
        def swap(items: tuple[Item, ...]) -> tuple[Item, ...]:
            return tuple(item if it.id == item.id else it for it in items)

        return dataclasses.replace(self, acceptance=swap(self.acceptance), checklist=swap(self.checklist))

    def to_dict(self) -> dict[str, Any]:
        return {
            "goal": self.goal,
            "paths": list(self.paths),
            "acceptance": [i.to_dict() for i in self.acceptance],
            "checklist": [i.to_dict() for i in self.checklist],
            "changes": [c.to_dict() for c in self.changes],
            "verdict": self.verdict.to_dict() if self.verdict is not None else None,
            "state": self.state.value,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Charter:
        """Build from ``to_dict`` output. Raises ValidationFailed on a malformed value."""
        if not isinstance(data, Mapping):
            raise ValidationFailed("a charter must be a JSON object", field="charter")
        state = data.get("state", GateState.DRAFT.value)
        if state not in {s.value for s in GateState}:
            raise ValidationFailed(f"unknown charter state {state!r}; one of {[s.value for s in GateState]}",
                                   field="state")
        verdict = data.get("verdict")
        try:
            return cls(
                goal=data.get("goal", ""),
                paths=tuple(data.get("paths") or ()),
                acceptance=tuple(Item.from_dict(i) for i in data.get("acceptance") or ()),
                checklist=tuple(Item.from_dict(i) for i in data.get("checklist") or ()),
                changes=tuple(Change.from_dict(c) for c in data.get("changes") or ()),
                verdict=Verdict.from_dict(verdict) if verdict else None,
                state=GateState(state),
            )
        except (AttributeError, TypeError) as exc:
            raise ValidationFailed(f"malformed charter: {exc}", field="charter") from None


__all__ = ["Change", "Charter", "Decision", "GateState", "Item", "Verdict", "clean_path"]
