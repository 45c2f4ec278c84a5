"""The line formats agents answer in during a charter run, and their parsers.

Kept deliberately small so any model (and a scripted one) can follow them; lines may start with
``-`` or ``*`` and keywords are case-insensitive. Anything else in a reply is commentary.

Implementer::

    CHANGED: <what changed>        one per change, in order
    VERIFIED: <how it was checked> attaches to the CHANGED line above it
    BLOCKED: <why>                 stop: the charter is unclear (sent to the parent as status)

QA::

    [x] <item id>: <evidence>      marks an acceptance or checklist item done (evidence optional)
    APPROVE                        every item is done
    REJECT: <reason>               loops the reason back to the implementer
    BLOCKED: <why>                 stop: the charter is unclear
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

_LINE = re.compile(r"^\s*(?:[-*]\s+)?(.*?)\s*$")
_KEYWORD = re.compile(r"^(CHANGED|VERIFIED|BLOCKED|REJECT)\s*:\s*(.*)$", re.IGNORECASE)
_APPROVE = re.compile(r"^APPROVED?\.?$", re.IGNORECASE)
_MARK = re.compile(r"^\[[xX]\]\s+([A-Za-z][A-Za-z0-9_.-]{0,31})(?:\s*:\s*(.*))?$")


def _lines(text: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        match = _LINE.match(raw)
        if match and match.group(1):
            out.append(match.group(1))
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ImplementerReport:
    """What an implementer's reply says it did."""

    #: (summary, verification) per ``CHANGED:`` line; verification "" when none followed.
    changes: tuple[tuple[str, str], ...] = ()
    #: The reason given in ``BLOCKED:``, or None.
    blocked: str | None = None


def parse_implementer(text: str) -> ImplementerReport:
    changes: list[tuple[str, str]] = []
    blocked: str | None = None
    for line in _lines(text):
        match = _KEYWORD.match(line)
        if match is None:
            continue
        keyword, rest = match.group(1).upper(), match.group(2).strip()
        if keyword == "CHANGED" and rest:
            changes.append((rest, ""))
        elif keyword == "VERIFIED" and changes:
            summary, before = changes[-1]
            changes[-1] = (summary, f"{before}; {rest}" if before else rest)
        elif keyword == "BLOCKED" and blocked is None:
            blocked = rest or "no reason given"
    return ImplementerReport(changes=tuple(changes), blocked=blocked)


QADecision = Literal["approve", "reject", "blocked", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class QAReport:
    """What a QA reply decides."""

    #: ``none`` when the reply holds no APPROVE, REJECT or BLOCKED line.
    decision: QADecision
    #: The REJECT or BLOCKED reason ("" for approve/none).
    reason: str = ""
    #: (item id, evidence) per ``[x]`` line, in order.
    marks: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def parse_qa(text: str) -> QAReport:
    """The first decision line wins; every ``[x]`` line counts."""
    marks: list[tuple[str, str]] = []
    decision: QADecision = "none"
    reason = ""
    for line in _lines(text):
        if mark := _MARK.match(line):
            marks.append((mark.group(1), (mark.group(2) or "").strip()))
            continue
        if decision != "none":
            continue
        if _APPROVE.match(line):
            decision = "approve"
        elif (match := _KEYWORD.match(line)) and match.group(1).upper() in ("REJECT", "BLOCKED"):
            decision = "reject" if match.group(1).upper() == "REJECT" else "blocked"
            reason = match.group(2).strip() or "no reason given"
    return QAReport(decision=decision, reason=reason, marks=tuple(marks))


__all__ = ["ImplementerReport", "QAReport", "parse_implementer", "parse_qa"]
