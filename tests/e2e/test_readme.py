"""The README's self-contained Python samples run as written (scripted model, temp working dir)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "with PenguinAgent(" in b]


def test_readme_has_samples() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("block", BLOCKS, ids=[f"sample-{i}" for i in range(len(BLOCKS))])
def test_readme_sample_runs_twice_in_one_folder(block: str, tmp_path: Path) -> None:
    """A reader runs a sample, then runs it again: the second run finds the first one's agents."""
    script = block if block.lstrip().startswith(("from", "import")) else "from penguin import PenguinAgent\n" + block
    env = {**os.environ, "PENGUIN_DATA_DIR": str(tmp_path / "data")}
    for run in (1, 2):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120,
                             cwd=tmp_path)
        assert out.returncode == 0, f"run {run}: {out.stderr[-3000:]}"
        if "Summarize the latest tickets" in block:
            assert out.stdout.startswith("Summarize the latest tickets\n")  # scripted:echo answers with the text
        if "wait_receipt" in block:
            assert "processed" in out.stdout.splitlines()
