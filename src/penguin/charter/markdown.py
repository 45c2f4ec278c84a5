"""``TASK_CHARTER.md``: render a ``Charter`` to Markdown and parse it back.

The layout is fixed so that agents and humans can both write it and a parser never guesses::

    # Task Charter

    State: draft

    ## Goal

    <one or more lines; no line starts with '#'>

    ## Paths

    - src/pkg/module.py

    ## Acceptance Criteria

    - [ ] AC1: <one line>
      - evidence: <one line, optional>

    ## QA Checklist

    - [x] QA1: <one line>

    ## Changes

    - <author>: <what changed>
      - verified: <how, optional>

    ## Verdict

    - changes_requested by <reviewer>: <reason>

Sections appear in this order and empty ones keep their heading. ``render(parse(text)) == text``
for any text ``render`` produced, and ``parse(render(c)) == c`` for any charter. The parser also
accepts ``*`` bullets, ``[X]``, a missing ``State:`` line (draft) and sections in any order, but
refuses an unknown section or a line it cannot place, naming the line: silently dropping a line
of the single source of truth would be worse than asking the writer to fix it.
"""

from __future__ import annotations

import re

from penguin.charter.model import Change, Charter, Decision, GateState, Item, Verdict
from penguin.errors import ValidationFailed

TITLE = "# Task Charter"
SECTIONS = ("Goal", "Paths", "Acceptance Criteria", "QA Checklist", "Changes", "Verdict")
_KEYS = {name.lower(): name for name in SECTIONS}

_STATE = re.compile(r"^State:\s*(\S+)\s*$", re.IGNORECASE)
_BULLET = re.compile(r"^[-*] (.*)$")
_ITEM = re.compile(r"^[-*] \[([ xX])\] ([A-Za-z][A-Za-z0-9_.-]{0,31}):(?: (.*))?$")
_SUB = re.compile(r"^\s{2,}[-*] (evidence|verified):(?: (.*))?$", re.IGNORECASE)
_CHANGE = re.compile(r"^[-*] ([A-Za-z0-9_-]{1,64}):(?: (.*))?$")
_VERDICT = re.compile(r"^[-*] (approved|changes_requested) by ([A-Za-z0-9_-]{1,64})(?:: (.*))?$")


# Rendering ----------------------------------------------------------------------------------


def _items(items: tuple[Item, ...]) -> list[str]:
    out: list[str] = []
    for item in items:
        out.append(f"- [{'x' if item.done else ' '}] {item.id}: {item.text}")
        if item.evidence:
            out.append(f"  - evidence: {item.evidence}")
    return out


def _changes(changes: tuple[Change, ...]) -> list[str]:
    out: list[str] = []
    for change in changes:
        out.append(f"- {change.author}: {change.summary}")
        if change.verification:
            out.append(f"  - verified: {change.verification}")
    return out


def _verdict(verdict: Verdict | None) -> list[str]:
    if verdict is None:
        return []
    line = f"- {verdict.decision} by {verdict.reviewer}"
    return [f"{line}: {verdict.reason}" if verdict.reason else line]


def render(charter: Charter) -> str:
    """The charter as ``TASK_CHARTER.md`` text (the layout in the module docstring)."""
    bodies = {
        "Goal": charter.goal.split("\n") if charter.goal else [],
        "Paths": [f"- {p}" for p in charter.paths],
        "Acceptance Criteria": _items(charter.acceptance),
        "QA Checklist": _items(charter.checklist),
        "Changes": _changes(charter.changes),
        "Verdict": _verdict(charter.verdict),
    }
    lines = [TITLE, "", f"State: {charter.state.value}", ""]
    for name in SECTIONS:
        lines += [f"## {name}", ""]
        if bodies[name]:
            lines += [*bodies[name], ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# Parsing ------------------------------------------------------------------------------------


def _fail(number: int, line: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"TASK_CHARTER.md line {number}: {why}: {line[:80]!r}", field="charter", line=number)


def _split(text: str) -> tuple[GateState, dict[str, list[tuple[int, str]]]]:
    """The state line and each section's (line number, line) body."""
    state = GateState.DRAFT
    sections: dict[str, list[tuple[int, str]]] = {}
    current: list[tuple[int, str]] | None = None
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1):
        if line.startswith("## "):
            key = line[3:].strip().lower()
            if key not in _KEYS:
                raise _fail(number, line, f"unknown section; the sections are {', '.join(SECTIONS)}")
            if _KEYS[key] in sections:
                raise _fail(number, line, "this section appears twice")
            current = sections[_KEYS[key]] = []
        elif current is not None:
            current.append((number, line))
        elif line.startswith("# ") or not line.strip():
            continue
        elif match := _STATE.match(line):
            value = match.group(1).lower()
            if value not in {s.value for s in GateState}:
                raise _fail(number, line, f"unknown state; one of {', '.join(s.value for s in GateState)}")
            state = GateState(value)
        else:
            raise _fail(number, line, "text before the first '## ' section")
    return state, sections


def _parse_items(body: list[tuple[int, str]]) -> tuple[Item, ...]:
    items: list[Item] = []
    for number, line in body:
        if not line.strip():
            continue
        if match := _ITEM.match(line):
            mark, item_id, text = match.groups()
            items.append(Item(id=item_id, text=text or "", done=mark in "xX"))
        elif (sub := _SUB.match(line)) and sub.group(1).lower() == "evidence" and items:
            last = items.pop()
            items.append(Item(id=last.id, text=last.text, done=last.done, evidence=sub.group(2) or ""))
        else:
            raise _fail(number, line, "expected '- [ ] <id>: <text>' or '  - evidence: <text>'")
    return tuple(items)


def _parse_changes(body: list[tuple[int, str]]) -> tuple[Change, ...]:
    changes: list[Change] = []
    for number, line in body:
        if not line.strip():
            continue
        if match := _CHANGE.match(line):
            changes.append(Change(author=match.group(1), summary=match.group(2) or ""))
        elif (sub := _SUB.match(line)) and sub.group(1).lower() == "verified" and changes:
            last = changes.pop()
            changes.append(Change(author=last.author, summary=last.summary, verification=sub.group(2) or ""))
        else:
            raise _fail(number, line, "expected '- <author>: <what changed>' or '  - verified: <how>'")
    return tuple(changes)


def _parse_verdict(body: list[tuple[int, str]]) -> Verdict | None:
    found = [(n, line) for n, line in body if line.strip()]
    if not found:
        return None
    number, line = found[0]
    if len(found) > 1:
        raise _fail(found[1][0], found[1][1], "the verdict section holds one line")
    match = _VERDICT.match(line)
    if match is None:
        raise _fail(number, line, "expected '- approved by <reviewer>' or '- changes_requested by <reviewer>: <why>'")
    decision: Decision = "approved" if match.group(1) == "approved" else "changes_requested"
    return Verdict(decision=decision, reviewer=match.group(2), reason=match.group(3) or "")


def _parse_paths(body: list[tuple[int, str]]) -> tuple[str, ...]:
    paths: list[str] = []
    for number, line in body:
        if not line.strip():
            continue
        match = _BULLET.match(line)
        if match is None:
            raise _fail(number, line, "expected '- <workspace-relative path>'")
        paths.append(match.group(1))
    return tuple(paths)


def parse(text: str) -> Charter:
    """Read ``TASK_CHARTER.md`` text.

    Raises:
        ValidationFailed: an unknown section, a malformed line (named by number) or a bad value.
    """
    if not isinstance(text, str):
        raise ValidationFailed("charter text must be a string", field="charter")
    state, sections = _split(text)
    goal = "\n".join(line for _, line in sections.get("Goal", []))
    return Charter(
        goal=goal,
        paths=_parse_paths(sections.get("Paths", [])),
        acceptance=_parse_items(sections.get("Acceptance Criteria", [])),
        checklist=_parse_items(sections.get("QA Checklist", [])),
        changes=_parse_changes(sections.get("Changes", [])),
        verdict=_parse_verdict(sections.get("Verdict", [])),
        state=state,
    )


__all__ = ["SECTIONS", "TITLE", "parse", "render"]
