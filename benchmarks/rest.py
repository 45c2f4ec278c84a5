"""The Penguin side of the LLM workloads over REST: ``PenguinClient`` against ``penguin serve``.

The server is a subprocess configured through its environment exactly as a user would
(``PENGUIN_DATA_DIR``, ``PENGUIN_MODEL=openai:fake``, ``OPENAI_BASE_URL``). ``penguin serve`` has
no way to load a Python tool, so W4 runs the same API app and uvicorn settings from
``benchmarks.tool_server``, which registers ``lookup`` first. The measured peak RSS is the
server's, read from ``/proc`` before it is stopped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from benchmarks.plan import (
    IN_FLIGHT,
    SYSTEM,
    W2_AGENTS,
    W3_TURNS,
    Measurement,
    Plan,
    Stopwatch,
    process_peak_rss_kb,
    user_text,
)

if TYPE_CHECKING:
    from penguin.api_client import PenguinClient

READY_TIMEOUT_S = 60.0
ROLE = "worker"
ROOT = Path(__file__).resolve().parent.parent
NO_TOOLS: dict[str, Any] = {"allow": []}
LOOKUP_ONLY: dict[str, Any] = {"allow": ["lookup"]}


class ServerFailed(RuntimeError):
    """``penguin serve`` did not come up, or a reply was not what the fake model sent."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def rest_unavailable() -> str | None:
    """Why the REST variant cannot run here, or None."""
    try:
        import penguin.api_client  # noqa: F401
        import penguin.cli.serve  # noqa: F401
    except ImportError as exc:
        return f"the REST API is not built yet ({exc})"
    return None


class Server:
    """A ``penguin serve`` (or tool server) subprocess on a free loopback port."""

    def __init__(self, data_dir: Path, base_url: str, *, with_tool: bool) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            key: value for key, value in os.environ.items() if not key.startswith(("PENGUIN_", "OPENAI_", "ANTHROPIC_"))
        }
        env.update(PENGUIN_DATA_DIR=str(data_dir), PENGUIN_MODEL="openai:fake", OPENAI_BASE_URL=base_url)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        if with_tool:
            command = [sys.executable, "-m", "benchmarks.tool_server", "--port", str(self.port)]
        else:
            penguin = shutil.which("penguin")
            command = [penguin] if penguin else [sys.executable, "-m", "penguin.cli.main"]
            command += ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=data_dir)
        self._log_path = data_dir / "server.log"

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        async with httpx.AsyncClient(base_url=self.url) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if (await client.get("/api/v1/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        self.stop()
        raise ServerFailed(f"the API server did not start:\n{self._log_path.read_text(errors='replace')[-4000:]}")

    def peak_rss_kb(self) -> int:
        return process_peak_rss_kb(self.process.pid)

    def cpu_s(self) -> float:
        """CPU seconds the server has used so far (user + system, all threads)."""
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


async def run_rest(plan: Plan, base_url: str, data_dir: Path) -> Measurement:
    """Run ``plan`` through ``PenguinClient`` against a fresh server."""
    result = Measurement(workload=plan.workload, variant="rest")
    reason = rest_unavailable()
    if reason is not None:
        result.skipped = reason
        return result
    from penguin.api_client import ChatOptions, PenguinClient

    tools = plan.workload == "W4"
    server = Server(data_dir, base_url, with_tool=tools)
    turn_ms: list[float] = []
    clock = Stopwatch()
    try:
        await server.wait_ready()
        async with PenguinClient(server.url) as client:
            policy = LOOKUP_ONLY if tools else NO_TOOLS
            if plan.workload == "W3":
                agents = [f"agent-{i}" for i in range(plan.size)]
            elif plan.workload == "W2":
                agents = list(W2_AGENTS)
            else:
                agents = ["bench"]
            for agent_id in ["warmup", *agents]:
                await client.create_agent(agent_id, system_prompt=SYSTEM, tool_policy=policy)
            if plan.workload == "W2":
                await client.assign_role(ROLE, agents)

            async def chat(text: str, agent_id: str) -> None:
                t0 = time.perf_counter()
                reply = await client.chat(text, options=ChatOptions(agent_id=agent_id))
                turn_ms.append((time.perf_counter() - t0) * 1000)
                if not reply.response.startswith("ack ") or len(reply.tool_calls) != int(tools):
                    raise ServerFailed(f"unexpected reply: {reply!r}")

            await chat(user_text(-1), "warmup")
            turn_ms.clear()
            cpu_before = server.cpu_s()
            clock.start()
            if plan.workload == "W3":
                await _many_agents(chat, agents)
            elif plan.workload == "W2":
                await _round_robin(client, plan.size, turn_ms)
            else:
                for i in range(plan.size):
                    await chat(user_text(i), "bench")
            clock.stop(result)
            # The server's CPU is Penguin's; the client's (PenguinClient's) is shown in the notes,
            # since it shares the machine's cores with the server.
            result.extra["client_cpu_s"] = result.cpu_s
            result.cpu_s = server.cpu_s() - cpu_before
        result.peak_rss_kb = server.peak_rss_kb()
    finally:
        server.stop()
    result.llm_calls = plan.expected_calls
    result.record_turns(turn_ms)
    return result


async def _round_robin(client: PenguinClient, turns: int, turn_ms: list[float]) -> None:
    """W2 over REST: ``POST /api/v1/coordinator/round-robin`` per turn."""
    for i in range(turns):
        t0 = time.perf_counter()
        answer = await client.round_robin(ROLE, user_text(i))
        turn_ms.append((time.perf_counter() - t0) * 1000)
        if answer.status != "processed" or not (answer.text or "").startswith("ack "):
            raise ServerFailed(f"unexpected round-robin answer: {answer!r}")


async def _many_agents(chat: Callable[[str, str], Awaitable[None]], agents: list[str]) -> None:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def agent(index: int, agent_id: str) -> None:
        async with gate:
            for turn in range(W3_TURNS):
                await chat(user_text(index * W3_TURNS + turn), agent_id)

    await asyncio.gather(*(agent(i, a) for i, a in enumerate(agents)))
