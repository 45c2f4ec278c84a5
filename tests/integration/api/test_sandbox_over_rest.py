"""The issue's attacks, replayed over REST against a real ``penguin serve``.

Two of them: a catastrophic regular expression (in a route rule and in ``search_files``) must
answer within a second while ``/health`` keeps answering; and a shell-enabled agent must not
read the server's environment (where the provider keys live), its database or its port. Shell
agents are created with the server's API key: enabling the shell is an admin's power.

Health latency bounds: the attack used to freeze the event loop for the whole match (57 s for
the route), so every health answer is held under 250 ms and their median under 50 ms. The 2-core
machines these tests share also run other suites; their scheduling noise alone reaches 50 ms.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from penguin_server import InProcessServer, PenguinServer, eventually

from penguin import PenguinCore

API = "/api/v1"
KEY = f"admin-{uuid.uuid4().hex}"
PROVIDER_KEY = f"sk-escape-test-{uuid.uuid4().hex}"
REDOS = "(a+)+$"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[PenguinServer, httpx.AsyncClient]]:
    server = PenguinServer(tmp_path, env={"PENGUIN_API_KEY": KEY, "OPENAI_API_KEY": PROVIDER_KEY}).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=30) as http:
            yield server, http
    finally:
        server.kill()


#: Every health answer during an attack is faster than this (seconds) ...
HEALTH_MAX = 0.250
#: ... and half of them faster than this.
HEALTH_MEDIAN = 0.050


class HealthPoller:
    """Polls ``/health`` on a connection of its own and keeps every latency."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = asyncio.Event()
        self._polled = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as http:
            while not self._stop.is_set():
                started = time.perf_counter()
                assert (await http.get(f"{API}/health")).status_code == 200
                async with self._polled:
                    self.latencies.append(time.perf_counter() - started)
                    self._polled.notify_all()

    async def polls(self, count: int) -> None:
        """Wait until ``count`` more polls have answered."""
        async with self._polled:
            target = len(self.latencies) + count
            await self._polled.wait_for(lambda: len(self.latencies) >= target)

    def check(self) -> None:
        assert max(self.latencies) < HEALTH_MAX, sorted(self.latencies)[-5:]
        assert statistics.median(self.latencies) < HEALTH_MEDIAN, statistics.median(self.latencies)

    async def __aenter__(self) -> HealthPoller:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


async def shell_agent(http: httpx.AsyncClient, agent_id: str, command: str, **policy: Any) -> None:
    created = await http.post(f"{API}/agents", json={
        "agent_id": agent_id, "model": "scripted:tool",
        "model_parameters": {"tool": "run_shell", "arguments": {"command": command}},
        "tool_policy": {"shell": True, **policy},
    })
    assert created.status_code == 201, created.text


async def test_a_redos_route_answers_at_once_and_health_stays_fast(
    served: tuple[PenguinServer, httpx.AsyncClient],
) -> None:
    server, http = served
    for agent_id in ("general", "as"):
        assert (await http.post(f"{API}/agents", json={"agent_id": agent_id})).status_code == 201
    rules = {"rules": [{"name": "redos", "target": "as", "pattern": REDOS}], "default": ["general"]}
    assert (await http.put(f"{API}/coordinator/routes", json=rules)).status_code == 200
    await http.get(f"{API}/health")  # the connection is open before the clock starts
    async with HealthPoller(server.url) as poller:
        await poller.polls(5)  # the poller runs before the attack, during it and after it
        started = time.perf_counter()
        routed = await http.post(f"{API}/coordinator/route", json={"text": "a" * 30 + "b", "timeout": 5})
        elapsed = time.perf_counter() - started
        await poller.polls(5)
    assert routed.status_code == 200, routed.text
    assert (routed.json()["rule"], routed.json()["answer"]["agent_id"]) == (None, "general")
    assert elapsed < 1.0, elapsed
    poller.check()


async def test_a_redos_search_answers_at_once_and_health_stays_fast(
    served: tuple[PenguinServer, httpx.AsyncClient],
) -> None:
    server, http = served
    workspace = server.data_dir / "workspace"
    workspace.mkdir(exist_ok=True)
    (workspace / "input.txt").write_text(("a" * 30 + "b\n") * 2000)
    created = await http.post(f"{API}/agents", json={
        "agent_id": "searcher", "model": "scripted:tool",
        "model_parameters": {"tool": "search_files", "arguments": {"pattern": REDOS}},
    })
    assert created.status_code == 201, created.text
    async with HealthPoller(server.url) as poller:
        await poller.polls(5)
        started = time.perf_counter()
        reply = await http.post(f"{API}/chat", json={"agent_id": "searcher", "text": "search"})
        elapsed = time.perf_counter() - started
        await poller.polls(5)
    assert reply.status_code == 200 and reply.json()["response"] == "no matches", reply.text
    assert elapsed < 1.0, elapsed
    poller.check()


async def test_a_pattern_re2_cannot_run_is_a_422_naming_the_field(
    served: tuple[PenguinServer, httpx.AsyncClient],
) -> None:
    _, http = served
    rules = {"rules": [{"name": "fine", "target": "a"}, {"name": "peek", "target": "a", "pattern": "a(?=b)"}]}
    refused = await http.put(f"{API}/coordinator/routes", json=rules)
    assert refused.status_code == 422
    assert refused.json()["field"] == "rules.1.pattern"
    assert refused.json()["detail"] == (
        "rule 'peek': invalid regular expression 'a(?=b)': invalid perl operator: (?=. Patterns use RE2 syntax, "
        "which has no backreferences or lookaround (see docs/security.md)"
    )


ATTACK = (
    "id -u; head -c 15 ../penguin.db; head -c 15 {data_dir}/penguin.db; "
    "python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2); print('REACHED THE API')\"; "
    "env; cat /proc/$PPID/environ /proc/[0-9]*/environ | tr '\\0' '\\n' | grep API_KEY"
)


async def test_the_shell_cannot_reach_the_servers_secrets_data_or_port(
    served: tuple[PenguinServer, httpx.AsyncClient], tmp_path: Path,
) -> None:
    server, http = served
    attack = ATTACK.format(data_dir=server.data_dir, port=server.port)
    await shell_agent(http, "attacker", attack)
    reply = (await http.post(f"{API}/chat", json={"agent_id": "attacker", "text": "go"})).json()["response"]
    assert reply.splitlines()[1] == "1000"
    for leak in (PROVIDER_KEY, KEY, "SQLite format 3", "REACHED THE API"):
        assert leak not in reply, leak
    assert "ConnectionRefusedError" in reply

    # The same attack on a server whose shell is unconfined gets all of it: the sandbox is what refused.
    open_dir = tmp_path / "unconfined"
    open_dir.mkdir()
    unconfined = PenguinServer(open_dir, env={"PENGUIN_API_KEY": KEY, "OPENAI_API_KEY": PROVIDER_KEY,
                                              "PENGUIN_SHELL_SANDBOX": "off"}).start()
    try:
        async with httpx.AsyncClient(base_url=unconfined.url, headers=AUTH, timeout=30) as open_http:
            await shell_agent(open_http, "attacker", ATTACK.format(data_dir=open_dir, port=unconfined.port))
            leaked = (await open_http.post(f"{API}/chat", json={"agent_id": "attacker", "text": "go"})).json()
    finally:
        unconfined.kill()
    for leak in (f"OPENAI_API_KEY={PROVIDER_KEY}", f"PENGUIN_API_KEY={KEY}", "SQLite format 3", "REACHED THE API"):
        assert leak in leaked["response"], leak


async def test_commands_die_with_a_killed_server(served: tuple[PenguinServer, httpx.AsyncClient]) -> None:
    server, http = served
    tag = f"sleep 900.{uuid.uuid4().int % 10**6:06d}"
    ready = server.data_dir / "workspace" / "ready"
    ready.parent.mkdir(exist_ok=True)
    os.mkfifo(ready)
    await shell_agent(http, "sleeper", f"setsid {tag} & {tag} & echo up > ready; wait")
    chat = asyncio.create_task(http.post(f"{API}/chat", json={"agent_id": "sleeper", "text": "go"}))
    async with asyncio.timeout(20):
        assert await asyncio.to_thread(ready.read_text) == "up\n"
    sandboxed = _pids(tag)
    assert sandboxed
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    with pytest.raises(httpx.HTTPError):
        await chat
    # --die-with-parent: the kernel kills the sandbox when its parent dies; wait for that to land.
    await eventually(lambda: _gone(tag))


async def _gone(marker: str) -> bool:
    return not _pids(marker)


def _pids(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry))
            except OSError:
                continue
    return found


async def test_enabling_the_shell_where_it_cannot_be_sandboxed_is_a_503(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap-here"))
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", api_key=KEY) as core, \
            InProcessServer(core) as srv, httpx.AsyncClient(base_url=srv.url, headers=AUTH) as http:
        answer = await http.post(f"{API}/agents", json={"agent_id": "ops", "tool_policy": {"shell": True}})
        assert answer.status_code == 503
        problem = answer.json()
        assert (problem["type"], problem["field"]) == (
            "https://penguin.dev/problems/sandbox-unavailable", "tool_policy.shell"
        )
        assert "apt-get install bubblewrap" in problem["detail"] and "PENGUIN_SHELL_SANDBOX=off" in problem["detail"]
        assert (await http.get(f"{API}/agents/ops")).status_code == 404
