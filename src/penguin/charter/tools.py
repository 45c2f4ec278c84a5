"""Model-facing charter tools: ``charter_read`` and ``charter_update``.

Both take the ``ToolContext`` first and work on ``ctx.core.charters`` (the workspace charter
files), so an agent sees and edits the same ``context/TASK_CHARTER.md`` the workflow drives.
Updates go through ``CharterGate``: the planner may rewrite the plan only before work starts (the
charter returns to DRAFT and is linted again), and an implementer may log a change only while
IMPLEMENTING. Marking items done and deciding are QA's reply lines, handled by the workflow, so
no tool can approve a charter. Errors are Penguin errors, handed back to the model as the result.
"""

from __future__ import annotations

import re
from typing import Any

from penguin.charter.gate import CharterGate
from penguin.charter.lint import lint
from penguin.charter.markdown import parse, render
from penguin.charter.model import Charter, Item
from penguin.errors import ToolError
from penguin.tools.base import ToolContext

_ID_PREFIX = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_.-]{0,31}):\s+(.*)$")


def _items(texts: list[str], prefix: str) -> tuple[Item, ...]:
    """``"AC1: text"`` keeps its id; a bare text gets ``<prefix><n>``."""
    out = []
    for number, text in enumerate(texts, 1):
        match = _ID_PREFIX.match(text)
        if match:
            out.append(Item(id=match.group(1), text=match.group(2)))
        else:
            out.append(Item(id=f"{prefix}{number}", text=text))
    return tuple(out)


def _report(charter: Charter, ctx: ToolContext) -> str:
    problems = lint(charter, workspace=ctx.core.workspace)
    lines = [render(charter)]
    if problems:
        lines.append("Lint problems (the run halts until they are fixed):")
        lines += [f"- {p}" for p in problems]
    else:
        lines.append("Lint: no problems.")
    return "\n".join(lines)


async def charter_read(ctx: ToolContext) -> str:
    """Read the task charter (context/TASK_CHARTER.md): goal, paths, criteria, checklist, changes, state."""
    charter = await ctx.core.charters.load()
    if charter is None:
        return "No charter yet: context/TASK_CHARTER.md does not exist. A planner writes it with charter_update."
    return _report(charter, ctx)


async def charter_update(
    ctx: ToolContext,
    markdown: str | None = None,
    goal: str | None = None,
    paths: list[str] | None = None,
    acceptance: list[str] | None = None,
    checklist: list[str] | None = None,
    change: str | None = None,
    verification: str = "",
) -> str:
    """Update the task charter. Planner: give `markdown` (the whole TASK_CHARTER.md) or any of goal,
    paths, acceptance, checklist (lists of 'ID: text' or plain text). Implementer: give `change`
    (what changed) and `verification` (how it was checked) to log your work.
    """
    plan = markdown is not None or goal is not None or paths is not None or acceptance is not None \
        or checklist is not None
    if not plan and change is None:
        raise ToolError("nothing to update: give markdown, goal, paths, acceptance, checklist or change")
    if plan and change is not None:
        raise ToolError("give either plan fields (planner) or change (implementer), not both in one call")

    def apply(current: Charter | None) -> Charter:
        gate = CharterGate(current if current is not None else Charter())
        if change is not None:
            return gate.record_change(ctx.agent_id, change, verification)
        fields: dict[str, Any] = {}
        if markdown is not None:
            written = parse(markdown)
            fields = {"goal": written.goal, "paths": written.paths, "acceptance": written.acceptance,
                      "checklist": written.checklist}
        if goal is not None:
            fields["goal"] = goal
        if paths is not None:
            fields["paths"] = paths
        if acceptance is not None:
            fields["acceptance"] = _items(acceptance, "AC")
        if checklist is not None:
            fields["checklist"] = _items(checklist, "QA")
        return gate.revise(**fields)

    charter = await ctx.core.charters.update(apply)
    return _report(charter, ctx)


TOOLS = (charter_read, charter_update)

__all__ = ["TOOLS", "charter_read", "charter_update"]
