"""User regular expressions, compiled by RE2: matching time is linear in the text, whatever the pattern.

Route rules and ``search_files`` take patterns from callers and models. Python's ``re``
backtracks, so a pattern such as ``(a+)+$`` takes exponential time on thirty ``a`` and a ``b``,
and no timeout can interrupt it. RE2 (``google-re2``) builds automata instead: a search visits
each character a bounded number of times and releases the GIL while it runs.

RE2 accepts Python's syntax except the features that need backtracking: backreferences
(``\\1``, ``(?P=name)``), lookahead and lookbehind (``(?=``, ``(?!``, ``(?<=``, ``(?<!``),
possessive quantifiers, atomic groups and conditionals. ``\\b``, ``\\d``, ``\\w``, classes,
alternation, counted repetition up to ``{1000}``, ``(?i)`` and ``(?m)`` all work. A pattern is
checked when it is set: longer than ``MAX_PATTERN_CHARS``, not RE2 syntax, or compiling past
RE2's memory budget is a ``ValidationFailed`` naming the field and the fix.

Linear is not free: an adversarial pattern can make RE2 fall back from its DFA to its NFA, which
costs up to about a microsecond per character per few dozen pattern states. So callers bound the
text too (route matching scans a prefix in a worker thread; ``search_files`` has a byte budget).
"""

from __future__ import annotations

from typing import Any

import re2

from penguin.errors import ValidationFailed

#: Longest pattern accepted, in characters.
MAX_PATTERN_CHARS = 1000
#: RE2's memory budget per compiled pattern (bytes): its default, stated so it is a decision.
MAX_PATTERN_MEMORY = 8 << 20


def _options(*, ignore_case: bool) -> Any:
    options = re2.Options()
    # RE2 logs every syntax error to stderr through absl; the error is raised to the caller instead.
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    options.case_sensitive = not ignore_case
    return options


class UserPattern:
    """A caller's regular expression, compiled by RE2. Build it with ``compile_pattern``."""

    __slots__ = ("_regex", "ignore_case", "pattern")

    def __init__(self, pattern: str, regex: Any, *, ignore_case: bool) -> None:
        self.pattern = pattern
        self.ignore_case = ignore_case
        self._regex = regex

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in ``text``."""
        return self._regex.search(text) is not None

    def __repr__(self) -> str:
        return f"UserPattern({self.pattern!r}, ignore_case={self.ignore_case})"


def compile_pattern(pattern: str, *, field: str, ignore_case: bool = False) -> UserPattern:
    """Check and compile a caller's pattern.

    Args:
        pattern: the regular expression (RE2 syntax; see the module docstring).
        field: the request field to blame when the pattern is refused.
        ignore_case: match letters regardless of case.

    Raises:
        ValidationFailed: the pattern is not a string, too long, not RE2 syntax, or too large.
    """
    if not isinstance(pattern, str):
        raise ValidationFailed("a pattern must be a string (a regular expression)", field=field)
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValidationFailed(
            f"pattern is {len(pattern)} characters long; at most {MAX_PATTERN_CHARS} are accepted", field=field
        )
    try:
        regex = re2.compile(pattern, _options(ignore_case=ignore_case))
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValidationFailed(
            f"invalid regular expression {pattern[:200]!r}: {reason}. Patterns use RE2 syntax, which has no "
            "backreferences or lookaround (see docs/security.md)",
            field=field,
        ) from None
    return UserPattern(pattern, regex, ignore_case=ignore_case)
