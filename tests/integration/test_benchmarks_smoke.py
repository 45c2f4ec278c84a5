"""The benchmark harness at 1/20 size: it completes, the fake server saw every call, every workload reports.

This is the only benchmark run in the test suite, and it asserts no timing: it guards the harness
(the runner, the workers, the fake server's call counting, the REST server start-up), not the
numbers, which depend on the machine. The full run is ``python -m benchmarks.run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: LLM calls each workload makes at scale 0.05, counted by hand from its definition: warm-up
#: turn(s) + W1 10 turns, W2 8 round-robin turns, W3 25 agents x 2 turns, W4 5 turns x 2 calls.
EXPECTED_CALLS = {"W1": 1 + 10, "W2": 1 + 8, "W3": 1 + 25 * 2, "W4": 2 + 5 * 2}


def test_the_smoke_run_completes_with_exact_call_counts_and_every_row(tmp_path: Path) -> None:
    out, raw = tmp_path / "benchmarks.md", tmp_path / "benchmarks.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--scale", "0.05", "--out", str(out), "--json", str(raw)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]

    rows = json.loads(raw.read_text())
    by_key = {(r["workload"], r["variant"]): r for r in rows}
    for workload, calls in EXPECTED_CALLS.items():
        for variant in ("floor", "aiofloor", "inproc", "rest"):
            row = by_key[(workload, variant)]
            assert row["skipped"] is None, (workload, variant, row["skipped"])
            assert (row["server_calls"], row["llm_calls"]) == (calls, calls), (workload, variant)
            assert row["wall_s"] > 0
    for key in (("W5", "floor"), ("W5", "inproc"), ("W6", "inproc"), ("W6", "rest")):
        assert by_key[key]["skipped"] is None, (key, by_key[key]["skipped"])
        assert by_key[key]["server_calls"] == 0
    assert by_key[("W5", "inproc")]["extra"]["envelopes"] == 5000
    assert by_key[("W6", "inproc")]["extra"]["agents"] == by_key[("W6", "rest")]["extra"]["agents"] == 500

    table = out.read_text()
    assert "| workload | variant |" in table
    for workload in ("W1", "W2", "W3", "W4", "W5", "W6"):
        assert f"| {workload} | Penguin in-process |" in table
    assert "| W6 | Penguin over REST |" in table
    for workload in ("W1", "W2", "W3", "W4"):
        assert f"| {workload} | wire floor |" in table
        assert f"| {workload} | aiohttp wire floor |" in table
        assert f"| {workload} | Penguin over REST |" in table
    assert "## Targets" in table and "Machine:" in table and "Python:" in table
