"""A folder served by ``penguin serve`` has one owner: CLI commands there are its clients.

These are the issue's acceptance scenarios, run with the installed console script: the server and
the CLI in one folder share agents and histories with no 5xx; a second server on the folder, or a
server on a taken port, exits 2 with one line naming what is in the way.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import httpx
from penguin_server import PenguinServer, free_port, penguin_executable


def penguin(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*penguin_executable(), *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200", "PENGUIN_MODEL": "scripted:echo", **(env or {})},
    )


def test_cli_commands_in_a_served_folder_go_through_the_server(tmp_path: Path) -> None:
    env = {"PENGUIN_DATA_DIR": str(tmp_path / "data")}
    server = PenguinServer(tmp_path, env=env).start()
    try:
        created = penguin(tmp_path, "agent", "create", "cli-made", "--persona", "made by the CLI", env=env)
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["system_prompt"] == "made by the CLI"
        for text in ("first from the CLI", "second from the CLI"):
            chatted = penguin(tmp_path, "chat", text, "--agent", "worker-00", env=env)
            assert (chatted.returncode, chatted.stdout) == (0, text + "\n"), chatted.stderr
        as_json = penguin(tmp_path, "chat", "json from the CLI", "--agent", "cli-made", "--json", env=env)
        assert json.loads(as_json.stdout)["response"] == "json from the CLI"
        listed = penguin(tmp_path, "agent", "list", "--json", env=env)
        assert {a["agent_id"] for a in json.loads(listed.stdout)} == {"default", "cli-made", "worker-00"}

        with httpx.Client(base_url=server.url, timeout=30) as http:
            assert http.get("/api/v1/agents/cli-made").json()["system_prompt"] == "made by the CLI"
            for i in range(5):
                for agent in ("worker-00", "cli-made"):
                    reply = http.post("/api/v1/chat", json={"text": f"rest {i}", "agent_id": agent})
                    assert reply.status_code == 200, reply.text
            convs = http.get("/api/v1/agents/worker-00/conversations").json()
            assert len(convs) == 1  # one history, shared by the CLI and REST
            history = http.get(f"/api/v1/conversations/{convs[0]['id']}/history", params={"limit": 100}).json()
        users = [m["content"] for m in history["messages"] if m["role"] == "user"]
        assert users == ["first from the CLI", "second from the CLI"] + [f"rest {i}" for i in range(5)]
        assert [m["seq"] for m in history["messages"]] == list(range(1, 15))

        shown = penguin(tmp_path, "agent", "show", "nobody", env=env)
        assert shown.returncode == 2 and shown.stderr.startswith("error: no agent 'nobody'")
        removed = penguin(tmp_path, "agent", "remove", "cli-made", env=env)
        assert removed.returncode == 0
        with httpx.Client(base_url=server.url) as http:
            assert http.get("/api/v1/agents/cli-made").status_code == 404
    finally:
        assert server.stop() in (0, -15)
    # With the server gone, the CLI owns the folder itself and sees the same data.
    listed = penguin(tmp_path, "agent", "list", "--json", env=env)
    assert {a["agent_id"] for a in json.loads(listed.stdout)} == {"default", "worker-00"}


def test_a_second_server_on_the_folder_exits_2_naming_the_owner(tmp_path: Path) -> None:
    env = {"PENGUIN_DATA_DIR": str(tmp_path / "data")}
    server = PenguinServer(tmp_path, env=env).start()
    try:
        second = penguin(tmp_path, "serve", "--port", str(free_port()), env=env)
        assert second.returncode == 2
        line = second.stderr.strip()
        assert "\n" not in line
        assert f"pid {server.process.pid}" in line and server.url in line  # type: ignore[union-attr]
        demo = penguin(tmp_path, "demo", "--port", str(free_port()), "--exit", env=env)
        assert demo.returncode == 2 and server.url in demo.stderr
        upgrade = penguin(tmp_path, "db", "upgrade", env=env)  # never changes a schema under a running server
        assert upgrade.returncode == 2 and server.url in upgrade.stderr
    finally:
        server.stop()


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PENGUIN_DATA_DIR": str(tmp_path / "data")}
        for command in (["serve", "--port", str(port)], ["demo", "--port", str(port), "--exit"]):
            out = penguin(tmp_path, *command, env=env)
            assert out.returncode == 2, out.stderr
            assert out.stderr == f"error: 127.0.0.1:{port} is already in use by another program; pick another " \
                                 "with --port (or PENGUIN_PORT)\n"
    # The refused server left the folder free.
    assert penguin(tmp_path, "agent", "list", env=env).returncode == 0


def test_url_points_the_cli_at_any_server(tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    server = PenguinServer(tmp_path / "server").start()
    try:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        env = {"PENGUIN_DATA_DIR": str(elsewhere / "data")}
        out = penguin(elsewhere, "--url", server.url, "chat", "over the url", "--agent", "remote", env=env)
        assert (out.returncode, out.stdout) == (0, "over the url\n"), out.stderr
        out = penguin(elsewhere, "agent", "list", "--json", env={**env, "PENGUIN_URL": server.url})
        assert "remote" in {a["agent_id"] for a in json.loads(out.stdout)}
        assert not (elsewhere / "data").exists()  # nothing was opened locally
    finally:
        server.stop()
    down = penguin(tmp_path, "--url", server.url, "agent", "list")
    assert down.returncode == 1 and down.stderr.startswith("error: the server did not answer")


def test_version() -> None:
    import penguin as package

    out = penguin(Path.cwd(), "--version")
    assert (out.returncode, out.stdout) == (0, f"penguin {package.__version__}\n")
