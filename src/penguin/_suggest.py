"""Name the closest valid choice when a caller misspells a key (``modle`` → ``model``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known`` to ``name``, or ``""`` when none is close."""
    choices = sorted(set(known))
    folded = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(name.lower(), list(folded), n=1, cutoff=0.6)
    return f"; did you mean {folded[close[0]]!r}?" if close else ""


__all__ = ["did_you_mean"]
