from __future__ import annotations

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
