"""End-to-end tests drive ``penguin serve`` processes; the process helper lives with the API tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration" / "api"))
