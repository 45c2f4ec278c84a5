"""Envelopes and filters: plain data that round-trips, ids that sort, filters that agree with SQL."""

from __future__ import annotations

import pytest

from penguin.bus import Envelope, EnvelopeFilter, IdFactory
from penguin.errors import ValidationFailed


def test_envelope_round_trips_through_dict() -> None:
    env = Envelope(
        id="msg_1", seq=7, sender="planner", recipient="role:qa", channel="team", message_type="verdict",
        content="ok", metadata={"score": 3}, created_at=12.5, correlation_id="c1", causation_id="m0",
    )
    data = env.to_dict()
    assert data == {
        "id": "msg_1", "seq": 7, "tenant_id": "default", "sender": "planner", "recipient": "role:qa",
        "channel": "team", "message_type": "verdict", "content": "ok", "metadata": {"score": 3},
        "created_at": 12.5, "correlation_id": "c1", "causation_id": "m0",
    }
    assert Envelope.from_dict({**data, "unknown": 1}) == env


def test_envelope_is_immutable_and_from_dict_names_bad_input() -> None:
    env = Envelope(id="x", sender="a")
    with pytest.raises(AttributeError):
        env.content = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationFailed, match="invalid envelope"):
        Envelope.from_dict({"id": "x"})


def test_ids_are_unique_and_sorted_in_creation_order() -> None:
    make = IdFactory("msg")
    ids = [make() for _ in range(5000)]
    assert len(set(ids)) == 5000
    assert ids == sorted(ids)
    assert all(i.startswith("msg_") and len(i) <= 64 for i in ids)
    # Another factory (another process) has its own random node part, so ids never collide.
    assert IdFactory("msg")()[14:20] != make()[14:20]


def test_filters_match_every_given_field() -> None:
    env = Envelope(id="x", sender="a", recipient="b", channel="agent:c", message_type="event")
    assert EnvelopeFilter().matches(env)
    assert EnvelopeFilter(sender="a", recipient="b", message_type="event").matches(env)
    assert not EnvelopeFilter(sender="b").matches(env)
    assert not EnvelopeFilter(channel="team").matches(env)
    for agent in ("a", "b", "c"):
        assert EnvelopeFilter(agent_id=agent).matches(env)
    assert not EnvelopeFilter(agent_id="d").matches(env)
    assert EnvelopeFilter.of(channel=None, sender="a").to_dict() == {"sender": "a"}


def test_filters_reject_bad_values() -> None:
    with pytest.raises(ValidationFailed, match="message_type"):
        EnvelopeFilter(message_type="Not A Type")
    with pytest.raises(ValidationFailed, match="channel"):
        EnvelopeFilter(channel="has space")
    with pytest.raises(ValidationFailed):
        EnvelopeFilter(agent_id="bad id")
