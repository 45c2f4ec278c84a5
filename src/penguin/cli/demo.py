"""``penguin demo``: start the server on the embedded defaults and run a short multi-agent scenario.

The scenario drives the real REST surface through ``PenguinClient``: three personas answer in
their own conversations (concurrently, sharing one loaded model), one conversation continues,
and a lead agent spawns a sub-agent and delegates work to it. Then the server keeps running
(unless ``--exit``) so the user can explore it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from penguin.api_client import ChatOptions, ConflictError, PenguinClient
from penguin.cli.progress import prepare_core_model
from penguin.cli.serve import launch
from penguin.config import Settings

#: Short replies keep the offline demo quick on two cores.
REPLY_PARAMETERS = {"max_tokens": 80, "temperature": 0.2}
#: The personas only talk: offering no tools keeps the small model's prompt short.
NO_TOOLS: dict[str, list[str]] = {"allow": []}


@dataclass(frozen=True, slots=True)
class Persona:
    agent_id: str
    system_prompt: str
    question: str


PERSONAS = (
    Persona(
        "support",
        "You are a friendly customer-support agent for a software product. Answer in at most two sentences.",
        "A customer says the CSV export button does nothing. What do you tell them?",
    ),
    Persona(
        "engineering",
        "You are a senior software engineer. Answer tersely, in at most two sentences.",
        "Name two likely causes of a CSV export button that does nothing.",
    ),
    Persona(
        "release",
        "You write release notes. Answer with a single changelog line.",
        "Write the changelog entry for a fix to the CSV export button.",
    ),
)


async def run_scenario(client: PenguinClient, console: Console) -> None:
    """The multi-agent scenario, over REST."""
    health = await client.health()
    console.print(f"[bold]server healthy[/] · Penguin {health.version}")
    for p in PERSONAS:
        await client.create_agent(p.agent_id, exist_ok=True, system_prompt=p.system_prompt,
                                  model_parameters=REPLY_PARAMETERS, tool_policy=NO_TOOLS)
        console.print(f"  persona [green]{p.agent_id}[/] ready")

    console.print("\n[bold]1. Three personas answer at once, each in its own conversation[/]")
    started = time.perf_counter()

    async def ask(p: Persona) -> tuple[Persona, str, str, float]:
        t0 = time.perf_counter()
        reply = await client.chat(p.question, options=ChatOptions(agent_id=p.agent_id))
        console.print(f"  [green]{p.agent_id}[/] answered in {time.perf_counter() - t0:.1f} s")
        return p, str(reply), reply.conversation_id, time.perf_counter() - t0

    answers = await asyncio.gather(*(ask(p) for p in PERSONAS))
    table = Table("agent", "conversation", "question", "reply", show_lines=True)
    for p, reply, conv, _ in answers:
        table.add_row(p.agent_id, conv, p.question, reply.strip())
    console.print(table)
    console.print(f"  all three in {time.perf_counter() - started:.1f} s (one shared model, queued fairly)")

    console.print("\n[bold]2. The support conversation continues where it left off[/]")
    follow = await client.chat("Now tell the customer a fix ships on Friday, in one sentence.",
                               options=ChatOptions(agent_id="support"))
    console.print(f"  [green]support[/] ({follow.conversation_id}): {str(follow).strip()}")

    console.print("\n[bold]3. engineering spawns a sub-agent and delegates to it[/]")
    try:
        child = await client.spawn_agent(
            "engineering", child_id="engineering-tester",
            system_prompt="You are a QA engineer. Answer with a short numbered list of at most three steps.",
        )
        console.print(f"  spawned [green]{child.agent_id}[/] (parent {child.parent_id})")
    except ConflictError:  # a previous demo in this folder spawned it
        child = await client.get_agent("engineering-tester")
        console.print(f"  [green]{child.agent_id}[/] (parent {child.parent_id}) is still there from the last demo")
    delegation = await client.delegate(
        "engineering", child.agent_id, "Write a test plan for the CSV export button fix.", wait=True, timeout=300,
        max_iterations=1,
    )
    console.print(f"  delegation {delegation.task_id}: [bold]{delegation.status}[/], "
                  f"{delegation.usage.total_tokens} tokens counted on the child")
    console.print(f"  [green]{child.agent_id}[/]: {(delegation.result or '').strip()}")

    console.print("\n[bold]4. Every agent kept its own log[/]")
    summary = Table("agent", "conversation", "messages")
    for agent_id in [p.agent_id for p in PERSONAS] + [child.agent_id]:
        for info in await client.list_conversations(agent_id):
            page = await client.get_conversation_history(info.id, limit=1000)
            summary.add_row(agent_id, info.id, str(len(page.messages)))
    console.print(summary)


def demo(host: str, port: int, *, exit_after: bool, console: Console) -> None:
    """Serve on ``host:port`` and run the scenario against it; keep serving unless ``exit_after``.

    Raises:
        DataDirInUse, PortInUse, InsecureBind: before anything starts.
    """
    settings = Settings()
    ready = launch(host, port, settings=settings, role="demo", log_level="warning", shutdown_grace=5)
    console.print(f"[bold]Penguin demo[/] · data in {settings.data_dir.resolve()} · "
                  f"model {settings.resolved_default_model()}")
    console.print(f"starting the server on {ready.url} ...")

    async def scenario() -> None:
        await prepare_core_model(ready.core, console)  # local weights: a progress bar, then a spinner
        began = time.perf_counter()
        async with PenguinClient(base_url=ready.url, api_key=settings.api_key, timeout=600) as client:
            await run_scenario(client, console)
        console.print(f"\n[bold green]demo finished in {time.perf_counter() - began:.1f} s[/]")
        console.print(f"Penguin is running at [bold]{ready.url}[/] · API docs {ready.url}/docs · "
                      f"try: curl {ready.url}/api/v1/agents")
        if exit_after:
            ready.server.should_exit = True
        else:
            console.print("Press Ctrl-C to stop.")

    with asyncio.Runner(loop_factory=ready.server.config.get_loop_factory()) as runner:
        runner.run(ready.serve(on_ready=scenario))
