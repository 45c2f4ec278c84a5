"""Placeholder lint: what in a charter is not yet specific enough to work from.

Implementers and QA must not guess. Before any implementation starts, the gate requires a charter
with no problems (``CharterGate.ready``); the workflow sends the problems to the parent as a
``status`` message instead. A problem is reported for:

- placeholder text in the goal, a path, a criterion or a checklist entry: the words ``TBD``,
  ``TODO``, ``FIXME`` or ``XXX`` (any case), the word ``Pending`` capitalised or a field that is
  only "pending", ``???``, an ellipsis standing alone, or a whole field in angle brackets
  (``<describe the goal>``). Lower-case "pending" inside a sentence ("retry pending requests")
  is ordinary English and is not flagged;
- an empty goal, no paths, no acceptance criteria;
- a path that escapes the workspace: absolute, ``~``, a ``..`` component or a NUL byte (the
  ``Workspace`` sandbox rules), or, when a workspace is given, one that resolves outside it
  through a symlink.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from penguin.charter.model import Charter
from penguin.errors import ToolError
from penguin.tools.sandbox import DEFAULT_MAX_PATH_CHARS, NAME_MAX_BYTES, Workspace

ProblemCode = Literal["placeholder", "empty_goal", "no_paths", "no_acceptance", "escaping_path"]

_PLACEHOLDER = re.compile(
    r"\b(?:tbd|todo|fixme|xxx)\b|\bPending\b|\bPENDING\b|\?\?\?|^\s*(?:\.\.\.|…)\s*$|^\s*<[^<>]*>\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_PENDING_CS = re.compile(r"\bpending\b")
_ONLY_PENDING = re.compile(r"^\W*pending\W*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One reason a charter is not ready to work from."""

    code: ProblemCode
    #: Where: ``goal``, ``paths``, ``path src/x.py``, ``acceptance``, ``item AC1``.
    where: str
    #: What is wrong and how to fix it, for the planner or the parent.
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "where": self.where, "message": self.message}


def placeholder_in(text: str) -> str | None:
    """The placeholder found in ``text``, or None."""
    if _ONLY_PENDING.match(text):
        return text.strip()
    for match in _PLACEHOLDER.finditer(text):
        found = match.group(0)
        # "pending" is flagged case-sensitively (Pending / PENDING), the other words in any case.
        if found.lower() == "pending" and _PENDING_CS.fullmatch(found):
            continue
        return found.strip()
    return None


def path_problem(path: str) -> str | None:
    """Why ``path`` escapes the workspace by the sandbox's lexical rules, or None."""
    if "\x00" in path:
        return "contains a NUL byte"
    if len(path) > DEFAULT_MAX_PATH_CHARS:
        return f"is longer than {DEFAULT_MAX_PATH_CHARS} characters"
    if path.startswith(("/", "\\")) or (len(path) > 2 and path[1:3] in (":/", ":\\")):
        return "is absolute; give it relative to the workspace root"
    if path.startswith("~"):
        return "starts with '~', which is not expanded; give it relative to the workspace root"
    for part in path.split("/"):
        if part == "..":
            return "has a '..' component; paths must stay inside the workspace"
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX_BYTES:
            return f"has a component longer than {NAME_MAX_BYTES} bytes"
    return None


def lint(charter: Charter, *, workspace: Workspace | None = None) -> list[Problem]:
    """Every problem in ``charter``, in document order (empty = ready to work from).

    Args:
        charter: the charter to check.
        workspace: when given, paths are also resolved and refused if a symlink leads outside it.
    """
    problems: list[Problem] = []

    def placeholder(where: str, text: str) -> None:
        found = placeholder_in(text)
        if found is not None:
            problems.append(Problem(code="placeholder", where=where,
                                    message=f"placeholder {found!r}; replace it with the real content"))

    if not charter.goal:
        problems.append(Problem(code="empty_goal", where="goal",
                                message="the goal is empty; say what the task must achieve"))
    else:
        placeholder("goal", charter.goal)
    if not charter.paths:
        problems.append(Problem(code="no_paths", where="paths",
                                message="no paths; list the workspace files or folders the task touches"))
    for path in charter.paths:
        placeholder(f"path {path}", path)
        why = path_problem(path)
        if why is None and workspace is not None:
            try:
                workspace.real_parts(path)
            except ToolError:  # ToolDenied: a symlink leads outside
                why = "resolves outside the workspace through a symlink"
        if why is not None:
            problems.append(Problem(code="escaping_path", where=f"path {path}", message=f"the path {why}"))
    if not charter.acceptance:
        problems.append(Problem(code="no_acceptance", where="acceptance",
                                message="no acceptance criteria; add '- [ ] AC1: <what must be true>' lines"))
    for item in charter.items:
        placeholder(f"item {item.id}", item.text)
    return problems


__all__ = ["Problem", "ProblemCode", "lint", "path_problem", "placeholder_in"]
