"""Latency statistics and the Prometheus exposition, read back with the client library's parser."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from penguin import PenguinCore
from penguin.telemetry.stats import RESERVOIR_SIZE, Latency


def test_latency_percentiles_buckets_and_bound() -> None:
    lat = Latency()
    for ms in range(1, 101):
        lat.add(float(ms))
    assert lat.to_dict() == {"count": 100, "mean": 50.5, "p50": 50.0, "p95": 95.0, "max": 100.0}
    buckets = dict(lat.cumulative_buckets())
    assert buckets["0.005"] == 5 and buckets["0.01"] == 10 and buckets["0.1"] == 100 and buckets["+Inf"] == 100
    for _ in range(RESERVOIR_SIZE):
        lat.add(1.0)
    assert len(lat.recent) == RESERVOIR_SIZE and lat.percentile(0.95) == 1.0  # only recent turns
    assert lat.count == 100 + RESERVOIR_SIZE and lat.max_ms == 100.0  # totals keep every turn
    assert Latency().to_dict() == {"count": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0.0}


async def test_exposition_is_labelled_by_agent_and_matches_the_summary(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        for agent_id, n in (("support", 2), ("qa", 1)):
            for i in range(n):
                await core.chat(f"message {i}", agent_id=agent_id)
        summary = await core.telemetry_summary()
        text = core.metrics.render().decode()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    for agent_id in ("support", "qa"):
        entry = summary.agents[agent_id]
        label = (("agent_id", agent_id),)
        assert samples[("penguin_agent_turns_total", label)] == entry["turns"]
        assert samples[("penguin_agent_tokens_total", (("agent_id", agent_id), ("direction", "input")))] == \
            entry["tokens"]["input_tokens"]
        assert samples[("penguin_agent_tokens_total", (("agent_id", agent_id), ("direction", "output")))] == \
            entry["tokens"]["output_tokens"]
        assert samples[("penguin_agent_turn_duration_seconds_count", label)] == entry["turns"]
        assert samples[("penguin_agent_turn_duration_seconds_bucket", (*label, ("le", "+Inf")))] == entry["turns"]
    events = summary.messages["by_type"]["event"]
    assert samples[("penguin_bus_envelopes_total", (("message_type", "event"),))] == events
    assert samples[("penguin_agents", ())] == 3  # default, support, qa


async def test_two_cores_never_share_metrics(tmp_path: Path) -> None:
    async with (PenguinCore(data_dir=tmp_path / "a", model="scripted:echo") as a,
                PenguinCore(data_dir=tmp_path / "b", model="scripted:echo") as b):
        await a.chat("only in a", agent_id="solo")
        await a.telemetry.flush()
        assert 'agent_id="solo"' in a.metrics.render().decode()
        assert 'agent_id="solo"' not in b.metrics.render().decode()
