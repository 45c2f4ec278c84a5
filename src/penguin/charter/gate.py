"""``CharterGate``: the planner → implementer → QA state machine over one charter.

The states and their only transitions (every other move raises ``Conflict`` naming the state and
what to do instead)::

    DRAFT ──ready()──▶ READY ──start()──▶ IMPLEMENTING ──submit()──▶ IN_QA ──approve()──▶ APPROVED
      ▲  (lint clean)    │                    ▲                          │
      └────revise()──────┘                    └────start()── CHANGES_REQUESTED ◀─request_changes()

``revise`` (planner edits goal, paths or items) is allowed in DRAFT and READY and always lands in
DRAFT, so an edited charter is linted again before work continues. ``record_change`` is allowed
while IMPLEMENTING, ``mark_done`` while IN_QA. ``approve`` needs every acceptance and checklist
item done; ``finish`` is the run's exit check and passes only in APPROVED with every item done.

The gate holds one immutable ``Charter`` at a time and replaces it on each transition; it does no
I/O (``penguin.charter.files`` persists, ``penguin.charter.workflow`` drives agents).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from penguin.charter.lint import lint
from penguin.charter.model import Change, Charter, GateState, Item, Verdict
from penguin.errors import Conflict, NotFound
from penguin.tools.sandbox import Workspace

S = GateState


class CharterGate:
    """Moves one charter through the gate; each method checks the transition it makes.

    Args:
        charter: the charter to start from (its ``state`` is where the gate starts).
        workspace: used by ``ready`` to resolve paths against symlinks (optional).
    """

    def __init__(self, charter: Charter, *, workspace: Workspace | None = None) -> None:
        self._charter = charter
        self._workspace = workspace

    @property
    def charter(self) -> Charter:
        return self._charter

    @property
    def state(self) -> GateState:
        return self._charter.state

    def _expect(self, action: str, *allowed: GateState) -> None:
        if self.state not in allowed:
            names = " or ".join(s.value for s in allowed)
            raise Conflict(
                f"cannot {action} a charter in state {self.state.value!r}; it must be {names}",
                field="state", state=self.state.value,
            )

    def _move(self, state: GateState, **changes: object) -> Charter:
        self._charter = dataclasses.replace(self._charter, state=state, **changes)  # type: ignore[arg-type]
        return self._charter

    # Planner ---------------------------------------------------------------------------------

    def revise(
        self,
        *,
        goal: str | None = None,
        paths: Iterable[str] | None = None,
        acceptance: Iterable[Item] | None = None,
        checklist: Iterable[Item] | None = None,
    ) -> Charter:
        """Change the plan (only before work starts); the charter goes back to DRAFT."""
        self._expect("revise", S.DRAFT, S.READY)
        changes: dict[str, object] = {}
        if goal is not None:
            changes["goal"] = goal
        if paths is not None:
            changes["paths"] = tuple(paths)
        if acceptance is not None:
            changes["acceptance"] = tuple(acceptance)
        if checklist is not None:
            changes["checklist"] = tuple(checklist)
        return self._move(S.DRAFT, **changes)

    def ready(self) -> Charter:
        """DRAFT → READY, only when lint finds no problem.

        Raises:
            Conflict: wrong state, or the lint problems (listed in the message and ``extra``).
        """
        self._expect("mark ready", S.DRAFT)
        problems = lint(self._charter, workspace=self._workspace)
        if problems:
            raise Conflict(
                "the charter is not ready: " + "; ".join(str(p) for p in problems),
                field="charter", problems=[p.to_dict() for p in problems],
            )
        return self._move(S.READY)

    # Implementer -----------------------------------------------------------------------------

    def start(self) -> Charter:
        """READY or CHANGES_REQUESTED → IMPLEMENTING."""
        self._expect("start implementing", S.READY, S.CHANGES_REQUESTED)
        return self._move(S.IMPLEMENTING)

    def record_change(self, author: str, summary: str, verification: str = "") -> Charter:
        """Append to the changes log (IMPLEMENTING only)."""
        self._expect("record a change in", S.IMPLEMENTING)
        change = Change(author=author, summary=summary, verification=verification)
        return self._move(S.IMPLEMENTING, changes=(*self._charter.changes, change))

    def submit(self) -> Charter:
        """IMPLEMENTING → IN_QA, once the implementer has recorded at least one change."""
        self._expect("submit for QA", S.IMPLEMENTING)
        if not self._charter.changes:
            raise Conflict("nothing to review: record what changed and how it was verified first",
                           field="changes")
        return self._move(S.IN_QA)

    # QA --------------------------------------------------------------------------------------

    def mark_done(self, item_id: str, evidence: str = "") -> Charter:
        """Mark one acceptance or checklist item done (IN_QA only). Raises NotFound for an unknown id."""
        self._expect("mark items done in", S.IN_QA)
        item = self._charter.find(item_id)
        if item is None:
            known = ", ".join(i.id for i in self._charter.items)
            raise NotFound(f"no charter item {item_id!r}; the items are {known}", field="item_id")
        done = Item(id=item.id, text=item.text, done=True, evidence=evidence or item.evidence)
        self._charter = self._charter.with_item(done)
        return self._charter

    def approve(self, reviewer: str) -> Charter:
        """IN_QA → APPROVED, only when every item is done.

        Raises:
            Conflict: wrong state, or items still open (``extra["open_items"]``).
        """
        self._expect("approve", S.IN_QA)
        open_items = self._charter.open_items
        if open_items:
            raise Conflict(f"cannot approve: items not marked done: {', '.join(open_items)}",
                           field="items", open_items=list(open_items))
        return self._move(S.APPROVED, verdict=Verdict(decision="approved", reviewer=reviewer))

    def request_changes(self, reviewer: str, reason: str) -> Charter:
        """IN_QA → CHANGES_REQUESTED with the reason the implementer must address."""
        self._expect("request changes on", S.IN_QA)
        verdict = Verdict(decision="changes_requested", reviewer=reviewer, reason=reason)
        return self._move(S.CHANGES_REQUESTED, verdict=verdict)

    # Exit ------------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state is S.APPROVED and not self._charter.open_items

    def finish(self) -> Charter:
        """The run's exit check: the approved charter, or Conflict if the run may not finish."""
        self._expect("finish a run with", S.APPROVED)
        if self._charter.open_items:
            raise Conflict(f"cannot finish: items not marked done: {', '.join(self._charter.open_items)}",
                           field="items")
        return self._charter


__all__ = ["CharterGate"]
