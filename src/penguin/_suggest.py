"""Name the closest valid choice when a caller misspells a key (``modle`` → ``model``)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

#: How alike two names must be (difflib's ratio, 0-1) to be suggested.
_CUTOFF = 0.6


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known`` to ``name``, or ``""`` when none is close.

    Names are compared letter by letter and also word by word in any order, so
    ``AUTO_CREATE_AGENTS`` finds ``AGENTS_AUTO_CREATE``.
    """
    best, score = "", _CUTOFF
    for choice in sorted(set(known)):
        alike = max(_ratio(name.lower(), choice.lower()), _ratio(_words(name), _words(choice)))
        if alike > score:
            best, score = choice, alike
    return f"; did you mean {best!r}?" if best else ""


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()


def _words(name: str) -> str:
    return "_".join(sorted(name.lower().replace("-", "_").split("_")))


__all__ = ["did_you_mean"]
