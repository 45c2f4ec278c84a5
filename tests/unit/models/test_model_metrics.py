"""Model-call metrics by provider: duration, retries and errors, against a fake server on loopback."""

from __future__ import annotations

from pathlib import Path

from fake_servers import FakeServer, json_reply
from prometheus_client.parser import text_string_to_metric_families

from penguin import ModelError, PenguinCore


def samples(core: PenguinCore) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(core.metrics.render().decode())
        for s in family.samples
    }


async def test_retries_errors_and_durations_are_counted_per_provider(tmp_path: Path, server: FakeServer) -> None:
    ok = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
          "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    async with PenguinCore(data_dir=tmp_path, model="openai:fake", openai_base_url=f"{server.url}/v1",
                           model_retries=1, model_timeout=2) as core:
        server.reply(json_reply({"error": {"message": "busy"}}, status=503, headers={"retry-after": "0"}),
                     json_reply(ok))
        assert (await core.chat("hello", agent_id="a1")).text == "hi"
        server.reply(json_reply({"error": {"message": "bad key"}}, status=401))
        try:
            await core.chat("again", agent_id="a1")
        except ModelError:
            pass
        else:
            raise AssertionError("the 401 must fail the turn")
        got = samples(core)
    assert got[("penguin_model_call_retries_total", (("provider", "openai"),))] == 1
    assert got[("penguin_model_call_errors_total", (("code", "model-error"), ("provider", "openai")))] == 1
    assert got[("penguin_model_call_duration_seconds_count", (("outcome", "ok"), ("provider", "openai")))] == 1
    assert got[("penguin_model_call_duration_seconds_count", (("outcome", "error"), ("provider", "openai")))] == 1
