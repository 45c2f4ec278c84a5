"""`penguin demo --exit` runs its whole scenario over the real server (scripted model for speed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_runs_the_scenario_and_exits(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "PENGUIN_DATA_DIR": str(tmp_path / "data"), "PENGUIN_MODEL": "scripted:echo",
           "COLUMNS": "200"}
    out = subprocess.run([sys.executable, "-m", "penguin.cli.main", "demo", "--port", str(port), "--exit"],
                         capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for persona in ("support", "engineering", "release", "engineering-tester"):
        assert persona in text
    assert "1. Three personas answer at once" in text
    assert "spawned engineering-tester (parent engineering)" in text
    assert ": completed," in text  # the delegation finished
    assert "demo finished in" in text
    assert f"Penguin is running at http://127.0.0.1:{port}" in text
    # every persona's answer is its own question echoed back by the scripted model
    assert "Name two likely causes of a CSV export button that does nothing." in text
    # and the port is free again: the server stopped
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
