"""The public surface of ``penguin.charter`` is declared once and pinned here."""

from __future__ import annotations

import penguin.charter


def test_exported_members() -> None:
    assert sorted(penguin.charter.__all__) == sorted([
        "JSON_PATH", "MARKDOWN_PATH", "Change", "Charter", "CharterFiles", "CharterGate", "CharterRunResult",
        "CharterWorkflow", "GateState", "Item", "Problem", "Verdict", "from_json", "lint", "parse", "render",
        "to_json",
    ])
    assert all(hasattr(penguin.charter, name) for name in penguin.charter.__all__)
