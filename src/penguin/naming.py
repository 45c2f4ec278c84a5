"""Agent id rules and time-ordered id generation."""

from __future__ import annotations

import os
import re
import time

from penguin.errors import InvalidAgentId

AGENT_ID_RULE = "^[A-Za-z0-9_-]{1,64}$"
AGENT_ID_PATTERN = re.compile(AGENT_ID_RULE)
DEFAULT_AGENT_ID = "default"
DEFAULT_TENANT = "default"

_RULE_TEXT = "agent ids are 1-64 characters of A-Z, a-z, 0-9, '_' or '-' (pattern ^[A-Za-z0-9_-]{1,64}$)"


def validate_agent_id(value: object, *, field: str = "agent_id") -> str:
    """Return ``value`` if it is a valid agent id.

    Raises:
        InvalidAgentId: with a message that states the rule.
    """
    if not isinstance(value, str) or AGENT_ID_PATTERN.fullmatch(value) is None:
        shown = repr(value) if not isinstance(value, str) or len(value) <= 80 else repr(value[:80] + "...")
        raise InvalidAgentId(f"invalid agent id {shown}: {_RULE_TEXT}", field=field)
    return value


def is_valid_agent_id(value: object) -> bool:
    return isinstance(value, str) and AGENT_ID_PATTERN.fullmatch(value) is not None


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
#: Every 10-bit value as its two characters, so an id is 11 table lookups instead of 22 digit steps.
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)


def new_id(prefix: str) -> str:
    """A time-ordered, URL-safe id: ``prefix`` + 10 chars of milliseconds + 12 random chars.

    Ids sort by creation time (to the millisecond), which keeps B-tree inserts append-only and
    makes ids readable in logs. They also satisfy the agent id rule, so they can name sub-agents.
    """
    ms = time.time_ns() // 1_000_000
    # From the OS's CSPRNG (0.6 us): some ids (approvals, tasks) may be shown to users, so they
    # stay unguessable; a user-space generator would be predictable from a few hundred ids.
    rand = int.from_bytes(os.urandom(8), "big") >> 4
    p = _PAIRS
    return (
        f"{prefix}_{p[(ms >> 40) & 1023]}{p[(ms >> 30) & 1023]}{p[(ms >> 20) & 1023]}{p[(ms >> 10) & 1023]}"
        f"{p[ms & 1023]}{p[rand >> 50]}{p[(rand >> 40) & 1023]}{p[(rand >> 30) & 1023]}{p[(rand >> 20) & 1023]}"
        f"{p[(rand >> 10) & 1023]}{p[rand & 1023]}"
    )
