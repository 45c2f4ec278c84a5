"""``ContextAssembler``'s memo never changes what ``assemble`` returns.

``reference`` below is the module's ``assemble``, a walk over the whole history on every call (its
own behaviour is pinned by the engine and summary tests); every test here compares the engine's
memoising assembler against it, over the same history lists the engine builds.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from penguin.conversations.context import (
    ContextAssembler,
)
from penguin.conversations.context import (
    assemble as walk_assemble,
)
from penguin.conversations.messages import Message

#: One assembler for the whole module, as an engine keeps one for all its turns.
ASSEMBLER = ContextAssembler()
assemble = ASSEMBLER.assemble


#: The memo-free walk over the whole history (``context.assemble``): what the engine's assembler
#: must always agree with.
reference = walk_assemble


def msg(role: str, content: str, seq: int = 0, **fields: Any) -> Message:
    return Message(conversation_id="c", agent_id="a", sender="x", role=role, content=content, seq=seq, **fields)  # type: ignore[arg-type]


def summary(seq: int, to_seq: Any, text: str = "summary") -> Message:
    return msg("system", text, seq, message_type="summary", metadata={"covers": {"from_seq": 1, "to_seq": to_seq}})


def call(call_id: str, arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": arguments}}


def check(system_prompt: str, history: list[Message], budget: int) -> list[dict[str, Any]]:
    got = assemble(system_prompt, history, budget)
    assert got == reference(system_prompt, history, budget), (system_prompt, budget, [m.content for m in history])
    return got


def contents(out: list[dict[str, Any]]) -> list[Any]:
    return [m["content"] for m in out]


def test_a_rollback_drops_the_rolled_back_messages() -> None:
    history = [msg("user", f"m{i}", i + 1) for i in range(6)]
    assert contents(check("", [*history], 10_000)) == ["m0", "m1", "m2", "m3", "m4", "m5"]
    kept = history[:3]  # the store keeps the same objects up to the checkpoint, in a new list
    later = msg("user", "after rollback", 4)
    assert contents(check("", [*kept, later], 10_000)) == ["m0", "m1", "m2", "after rollback"]
    assert contents(check("", [*kept], 10_000)) == ["m0", "m1", "m2"]


def test_a_new_summary_replaces_what_it_covers_on_the_next_call() -> None:
    history = [msg("user" if i % 2 else "assistant", f"m{i}", i) for i in range(1, 9)]
    assert len(check("sys", [*history], 10_000)) == 9
    history.append(summary(9, 6, "S"))
    assert contents(check("sys", [*history, msg("user", "new")], 10_000)) == ["sys", "S", "m7", "m8", "new"]
    history.append(summary(10, 7, "S2"))
    assert contents(check("sys", [*history], 10_000)) == ["sys", "S2", "m8"]


def test_a_replaced_message_is_never_served_from_the_memo() -> None:
    history = [msg("user", "one", 1), msg("assistant", "two", 2), msg("user", "three", 3)]
    check("", history, 10_000)
    history[1] = msg("assistant", "TWO, rewritten", 2)  # same list, same length, other message
    assert contents(check("", history, 10_000)) == ["one", "TWO, rewritten", "three"]
    history[0] = msg("user", "first, rewritten", 1)  # the memo's key message itself
    assert contents(check("", history, 10_000)) == ["first, rewritten", "TWO, rewritten", "three"]
    assert contents(check("", history[:2], 10_000)) == ["first, rewritten", "TWO, rewritten"]


def test_seq_assigned_after_a_call_is_read_fresh() -> None:
    # Unsaved messages (seq 0) get their seq when the turn is persisted; the summary cutoff must
    # see the new value even though the messages were already measured.
    pending = [msg("user", "p1"), msg("assistant", "p2")]
    history = [*pending, summary(0, 2, "S"), msg("user", "tail")]
    assert contents(check("", history, 10_000)) == ["S", "p1", "p2", "tail"]
    pending[0].seq, pending[1].seq = 1, 2
    assert contents(check("", history, 10_000)) == ["S", "tail"]


def test_budget_and_prompt_changes_use_the_same_memo() -> None:
    history = [msg("user", "x" * (8 * i), i) for i in range(1, 40)]
    for budget in (10_000, 200, 60, 5, 0, -10):
        for prompt in ("", "p" * 100):
            check(prompt, history, budget)


def test_tool_results_keep_their_call_at_every_budget() -> None:
    history = [
        msg("user", "u" * 400, 1),
        msg("assistant", "", 2, message_type="action", tool_calls=[call("1"), call("2")]),
        msg("tool", "r" * 40, 3, message_type="action", tool_call_id="1"),
        msg("tool", "s" * 400, 4, message_type="action", tool_call_id="2"),
        msg("system", "note", 5, message_type="status"),
    ]
    for budget in range(0, 400, 7):
        out = check("sys", history, budget)
        assert out[1]["role"] != "tool"


def test_leading_tool_results_are_dropped_across_a_superseded_summary() -> None:
    history = [
        msg("user", "old", 1),
        msg("assistant", "", 2, message_type="action", tool_calls=[call("1"), call("2")]),
        msg("tool", "r1", 3, message_type="action", tool_call_id="1"),
        summary(4, 1, "S1"),  # superseded by S2 and not covered by it: skipped, not a stop
        msg("tool", "r2", 5, message_type="action", tool_call_id="2"),
        msg("user", "u", 6),
        summary(7, 2, "S2"),
        msg("assistant", "a", 8),
    ]
    assert contents(check("", history, 10_000)) == ["S2", "u", "a"]


def test_unmeasurable_messages_behave_as_before() -> None:
    bad = msg("assistant", "old", 1, tool_calls=[{"function": None}])  # estimate_tokens raises
    history = [bad, *(msg("user", "y" * 100, i) for i in range(2, 6))]
    assert contents(assemble("", history, 30)) == contents(reference("", history, 30))  # out of reach: fine
    with pytest.raises(AttributeError):
        reference("", history, 10_000)
    with pytest.raises(AttributeError):
        assemble("", history, 10_000)
    weird = [summary(1, "not a number"), msg("user", "hi", 2)]
    with pytest.raises(ValueError):
        assemble("", weird, 10_000)


def test_non_list_histories_and_empty_ones() -> None:
    history = (msg("user", "a", 1), msg("assistant", "b", 2))
    assert assemble("s", history, 100) == reference("s", history, 100)
    assert assemble("s", [], 100) == [{"role": "system", "content": "s"}]
    assert assemble("", [msg("system", "x", message_type="event")], 100) == []


def test_the_memo_is_bounded() -> None:
    for i in range(ASSEMBLER.limit + 50):
        check("", [msg("user", f"conversation {i}")], 100)
    assert len(ASSEMBLER) <= ASSEMBLER.limit


def _random_message(rng: random.Random, seq: int, calls: list[str]) -> Message:
    roll = rng.random()
    text = "w" * rng.choice([0, 3, 40, 200, 900])
    if roll < 0.08:
        return msg("system", "status", seq, message_type=rng.choice(["status", "event"]))
    if roll < 0.14:
        to_seq = rng.choice([max(seq - rng.randint(1, 12), 0), seq - 1, 0, -3])
        if rng.random() < 0.1:
            return msg("system", "no covers", seq, message_type="summary", metadata={"note": 1})
        return summary(seq, to_seq, "S" + text)
    if roll < 0.3:
        ids = [f"c{seq}-{k}" for k in range(rng.randint(1, 3))]
        calls.extend(ids)
        return msg(
            "assistant",
            text if rng.random() < 0.3 else "",
            seq,
            message_type="action",
            tool_calls=[call(i, "{" + "a" * rng.randint(0, 80) + "}") for i in ids],
        )
    if roll < 0.5 and calls:
        return msg("tool", text, seq, message_type="action", tool_call_id=calls.pop(0), name="f")
    if roll < 0.7:
        meta = {"context": {"k": rng.randint(0, 9)}} if rng.random() < 0.3 else None
        return msg("user", "u" + text, seq, metadata=meta)
    return msg("assistant", "a" + text, seq, message_type=rng.choice(["message", "delegation", "verdict"]))


@pytest.mark.parametrize("seed", range(40))
def test_matches_the_full_walk_on_random_conversations(seed: int) -> None:
    """Turns, compaction, persistence, rollback, branches and edits, checked after every step."""
    rng = random.Random(seed)
    history: list[Message] = []
    calls: list[str] = []
    for _ in range(60):
        op = rng.random()
        if op < 0.1 and history:  # rollback or branch: a prefix of the same (or copied) messages
            cut = rng.randint(0, len(history))
            if rng.random() < 0.3:  # a branch: copies, equal in every field or marked as copies
                marked = rng.random() < 0.5
                history = [
                    Message(**{**m.to_dict(), "metadata": {**(m.metadata or {}), "copied_from": m.id}})
                    if marked
                    else Message(**m.to_dict())
                    for m in history[:cut]
                ]
            else:
                history = history[:cut]
        elif op < 0.15 and history:  # an edited list: one message replaced
            at = rng.randrange(len(history))
            history[at] = _random_message(rng, history[at].seq, calls)
        # One turn: unsaved messages assembled with growing lists, then persisted.
        new: list[Message] = []
        for _ in range(rng.randint(1, 4)):
            new.append(_random_message(rng, 0, calls))
            for _ in range(2):
                check(
                    rng.choice(["", "You are a penguin."]),
                    [*history, *new],
                    rng.choice([0, 30, 150, 600, 4000, 100_000]),
                )
        seq = max((m.seq for m in history), default=0)
        for m in new:
            seq += 1
            m.seq = seq
        history.extend(new)
        check("sys", [*history], rng.choice([40, 500, 100_000]))
