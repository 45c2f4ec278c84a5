"""/metrics stays bounded: per-agent series for the most active agents, the rest under ``~other``."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from penguin import PenguinCore
from penguin.telemetry import OTHER_AGENTS


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        family.name: [(dict(s.labels), s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


async def test_500_agents_expose_the_top_n_and_other(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", metrics_agent_limit=50) as core:
        busy = [f"busy-{i:02d}" for i in range(10)]
        quiet = [f"quiet-{i:03d}" for i in range(490)]
        for agent_id in busy:
            for n in range(3):
                await core.chat(f"turn {n}", agent_id=agent_id)
        for start in range(0, len(quiet), 50):
            await asyncio.gather(*(core.chat("one turn", agent_id=a) for a in quiet[start:start + 50]))
        await core.telemetry.flush()
        text = core.metrics.render().decode()

    got = families(text)
    turns = {labels["agent_id"]: value for labels, value in got["penguin_agent_turns"]}
    assert len(turns) == 51 and OTHER_AGENTS in turns
    assert all(turns[a] == 3 for a in busy)  # the most active keep their own series
    assert sum(turns.values()) == 10 * 3 + 490  # nothing is lost in the fold
    durations = {labels["agent_id"] for labels, _ in got["penguin_agent_turn_duration_seconds"]}
    assert durations == set(turns)
    other_count = next(v for labels, v in got["penguin_agent_turn_duration_seconds"]
                       if labels["agent_id"] == OTHER_AGENTS and labels.get("le") == "+Inf")
    assert other_count == turns[OTHER_AGENTS]
    assert not any(name.endswith("latency_seconds") for name in got)  # no quantile gauges
    assert len(text.splitlines()) < 1500  # 4,353 lines before the cap
