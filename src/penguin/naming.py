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


def new_id(prefix: str) -> str:
    """A time-ordered, URL-safe id: ``prefix`` + 10 chars of milliseconds + 12 random chars.

    Ids sort by creation time (to the millisecond), which keeps B-tree inserts append-only and
    makes ids readable in logs. They also satisfy the agent id rule, so they can name sub-agents.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(8), "big")
    chars = []
    for _ in range(10):
        chars.append(_ALPHABET[ms & 31])
        ms >>= 5
    head = "".join(reversed(chars))
    tail = []
    for _ in range(12):
        tail.append(_ALPHABET[rand & 31])
        rand >>= 5
    return f"{prefix}_{head}{''.join(tail)}"
