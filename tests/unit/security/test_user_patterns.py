"""User regular expressions: RE2 syntax, checked when set, matched in linear time."""

from __future__ import annotations

import time

import pytest

from penguin.errors import ValidationFailed
from penguin.security.patterns import MAX_PATTERN_CHARS, compile_pattern

#: Catastrophic for a backtracking engine: Python's ``re`` needs minutes on 30 ``a`` and a ``b``.
REDOS = "(a+)+$"


def test_a_catastrophic_pattern_is_linear() -> None:
    pattern = compile_pattern(REDOS, field="pattern")
    started = time.perf_counter()
    assert not pattern.search("a" * 30 + "b")
    assert not pattern.search("a" * 1_000_000 + "b")
    assert time.perf_counter() - started < 0.5
    assert pattern.search("aaa")


def test_python_syntax_that_re2_shares_works() -> None:
    assert compile_pattern(r"\b(down|5\d\d)\b", field="p").search("payments return 503")
    assert compile_pattern(r"(?P<word>\w+)@example\.com", field="p").search("mail bob@example.com")
    assert compile_pattern(r"(?m)^b$", field="p").search("a\nb\nc")
    assert compile_pattern("ALPHA", field="p", ignore_case=True).search("the alpha")
    assert not compile_pattern("ALPHA", field="p").search("the alpha")
    assert compile_pattern("x{1000}", field="p").search("x" * 1000)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(unclosed", "missing ): (unclosed"),
        (r"(a)\1", r"invalid escape sequence: \1"),
        ("(?=a)b", "invalid perl operator: (?="),
        ("(?<!a)b", "invalid perl operator: (?<!"),
        ("x{1001}", "invalid repetition size: {1001}"),
        ("((a{100}){100}){100}", "invalid repetition size: {100}"),
        ("[\\p{L}\\p{N}]{1000}" * 8, "pattern too large - compile failed"),
    ],
)
def test_patterns_re2_cannot_run_are_refused_naming_the_field(pattern: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        compile_pattern(pattern, field="rules.2.pattern")
    assert refused.value.field == "rules.2.pattern"
    assert refused.value.detail.startswith(f"invalid regular expression {pattern[:200]!r}: ")
    assert reason in refused.value.detail
    assert refused.value.detail.endswith("Patterns use RE2 syntax, which has no backreferences or lookaround "
                                         "(see docs/security.md)")


def test_long_patterns_are_refused() -> None:
    compile_pattern("a" * MAX_PATTERN_CHARS, field="p")
    with pytest.raises(ValidationFailed, match=f"pattern is 1001 characters long; at most {MAX_PATTERN_CHARS}"):
        compile_pattern("a" * (MAX_PATTERN_CHARS + 1), field="p")
    with pytest.raises(ValidationFailed, match="must be a string"):
        compile_pattern(3, field="p")  # type: ignore[arg-type]
