from __future__ import annotations

import os
import re
import time

import pytest

from penguin.errors import InvalidAgentId
from penguin.naming import AGENT_ID_RULE, is_valid_agent_id, new_id, validate_agent_id


@pytest.mark.parametrize("value", ["a", "support", "A-Z_09", "x" * 64, "-", "_"])
def test_valid_ids(value: str) -> None:
    assert validate_agent_id(value) == value
    assert is_valid_agent_id(value)


@pytest.mark.parametrize(
    "value", ["", "x" * 65, "has space", "dot.ted", "slash/", "ünicode", "new\nline", "a;b", None, 12, ["a"]]
)
def test_invalid_ids_state_the_rule(value: object) -> None:
    with pytest.raises(InvalidAgentId) as info:
        validate_agent_id(value)
    assert AGENT_ID_RULE in info.value.detail
    assert info.value.field == "agent_id"
    assert info.value.status == 422
    assert not is_valid_agent_id(value)


def test_new_ids_are_unique_time_ordered_and_valid_agent_ids() -> None:
    ids = [new_id("x") for _ in range(2000)]
    assert len(set(ids)) == 2000
    heads = [i[2:12] for i in ids]
    assert heads == sorted(heads)
    assert all(is_valid_agent_id(i) for i in ids)


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def test_new_id_layout_time_part_and_random_part() -> None:
    before = time.time_ns() // 1_000_000
    ids = [new_id("msg") for _ in range(2000)]
    after = time.time_ns() // 1_000_000
    assert all(re.fullmatch(r"msg_[0-9a-hjkmnp-tv-z]{22}", i) for i in ids)
    for i in (ids[0], ids[-1]):
        ms = 0
        for ch in i[4:14]:
            ms = ms * 32 + _CROCKFORD.index(ch)
        assert before <= ms <= after
    # Every character of the random part takes every value: no bit of it is stuck.
    for position in range(14, 26):
        assert {i[position] for i in ids} == set(_CROCKFORD)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave without running any cleanup
        try:
            os.write(write, " ".join(new_id("x")[12:] for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    parent = [new_id("x")[12:] for _ in range(5)]
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read().decode().split()
    os.waitpid(pid, 0)
    assert len(child) == 5 and not set(child) & set(parent)
