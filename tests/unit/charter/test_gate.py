"""The planner → implementer → QA gate: every legal transition, and every illegal one refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from penguin.charter import Change, Charter, CharterGate, GateState, Item, Verdict
from penguin.errors import Conflict, NotFound

S = GateState
Action = Callable[[CharterGate], Charter]

ACTIONS: dict[str, Action] = {
    "revise": lambda g: g.revise(goal="Ship the flag"),
    "ready": lambda g: g.ready(),
    "start": lambda g: g.start(),
    "record_change": lambda g: g.record_change("impl", "added the flag", "ran tests"),
    "submit": lambda g: g.submit(),
    "mark_done": lambda g: g.mark_done("AC1", "checked"),
    "approve": lambda g: g.approve("qa"),
    "request_changes": lambda g: g.request_changes("qa", "AC1 fails"),
    "finish": lambda g: g.finish(),
}
#: (action, from state) -> state after it; every pair not listed must raise Conflict.
LEGAL: dict[tuple[str, GateState], GateState] = {
    ("revise", S.DRAFT): S.DRAFT,
    ("revise", S.READY): S.DRAFT,
    ("ready", S.DRAFT): S.READY,
    ("start", S.READY): S.IMPLEMENTING,
    ("start", S.CHANGES_REQUESTED): S.IMPLEMENTING,
    ("record_change", S.IMPLEMENTING): S.IMPLEMENTING,
    ("submit", S.IMPLEMENTING): S.IN_QA,
    ("mark_done", S.IN_QA): S.IN_QA,
    ("approve", S.IN_QA): S.APPROVED,
    ("request_changes", S.IN_QA): S.CHANGES_REQUESTED,
    ("finish", S.APPROVED): S.APPROVED,
}


def charter_in(state: GateState) -> Charter:
    """A lint-clean charter with one change and every item done, so only the state decides."""
    return Charter(goal="Add a --json flag", paths=("src/cli.py",),
                   acceptance=(Item(id="AC1", text="prints JSON", done=True),),
                   changes=(Change(author="impl", summary="added the flag"),), state=state)


@pytest.mark.parametrize("state", list(GateState))
@pytest.mark.parametrize("action", list(ACTIONS))
def test_each_action_in_each_state(action: str, state: GateState) -> None:
    gate = CharterGate(charter_in(state))
    expected = LEGAL.get((action, state))
    if expected is None:
        with pytest.raises(Conflict, match=f"in state '{state.value}'"):
            ACTIONS[action](gate)
        assert gate.charter == charter_in(state)
    else:
        assert ACTIONS[action](gate).state is expected
        assert gate.state is expected


def test_ready_needs_a_lint_clean_charter() -> None:
    gate = CharterGate(Charter(goal="TBD"))
    with pytest.raises(Conflict, match="not ready: goal: placeholder 'TBD'") as info:
        gate.ready()
    assert [p["code"] for p in info.value.extra["problems"]] == ["placeholder", "no_paths", "no_acceptance"]
    assert gate.state is S.DRAFT


def test_submit_needs_a_recorded_change() -> None:
    gate = CharterGate(dataclasses.replace(charter_in(S.IMPLEMENTING), changes=()))
    with pytest.raises(Conflict, match="record what changed"):
        gate.submit()


def test_approve_and_finish_need_every_item_done() -> None:
    open_charter = dataclasses.replace(
        charter_in(S.IN_QA), acceptance=(Item(id="AC1", text="prints JSON"),), checklist=(Item(id="QA1", text="docs"),))
    gate = CharterGate(open_charter)
    with pytest.raises(Conflict, match="not marked done: AC1, QA1") as info:
        gate.approve("qa")
    assert info.value.extra["open_items"] == ["AC1", "QA1"]
    gate.mark_done("AC1", "ran it")
    gate.mark_done("QA1")
    assert gate.approve("qa") == dataclasses.replace(
        open_charter, acceptance=(Item(id="AC1", text="prints JSON", done=True, evidence="ran it"),),
        checklist=(Item(id="QA1", text="docs", done=True),), state=S.APPROVED,
        verdict=Verdict(decision="approved", reviewer="qa"))
    assert gate.finished
    with pytest.raises(Conflict, match="cannot finish: items not marked done: AC1"):
        CharterGate(dataclasses.replace(open_charter, state=S.APPROVED, checklist=())).finish()


def test_mark_done_of_an_unknown_item_names_the_known_ones() -> None:
    with pytest.raises(NotFound, match="no charter item 'AC9'; the items are AC1"):
        CharterGate(charter_in(S.IN_QA)).mark_done("AC9")


def test_a_full_cycle_with_one_rework_round() -> None:
    gate = CharterGate(Charter(goal="Add a --json flag", paths=("src/cli.py",),
                               acceptance=(Item(id="AC1", text="prints JSON"),)))
    gate.ready()
    gate.start()
    gate.record_change("impl", "added the flag")
    gate.submit()
    gate.request_changes("qa", "no test")
    gate.start()
    gate.record_change("impl", "added a test", "pytest -k json")
    gate.submit()
    gate.mark_done("AC1")
    gate.approve("qa")
    assert [c.summary for c in gate.finish().changes] == ["added the flag", "added a test"]
