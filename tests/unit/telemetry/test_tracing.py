"""OpenTelemetry: off by default; with OTEL_TRACES_EXPORTER=console a chat prints its span tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from penguin import PenguinCore
from penguin.api import create_app
from penguin.errors import ValidationFailed
from penguin.telemetry.tracing import Tracing, exporters_from

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def printed_spans(text: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed, in order."""
    decoder = json.JSONDecoder()
    spans, index = [], 0
    while (start := text.find("{", index)) != -1:
        span, index = decoder.raw_decode(text, start)
        spans.append(span)
    return spans


async def test_one_chat_with_a_tool_call_prints_turn_model_and_tool_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "penguin-test")
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        assert core.tracing.enabled
        (tmp_path / "workspace").mkdir(exist_ok=True)
        (tmp_path / "workspace" / "notes.txt").write_text("hello")
        await core.create_agent("tracer", model="scripted:tool",
                                model_parameters={"tool": "read_file", "arguments": {"path": "notes.txt"}})
        capsys.readouterr()
        app = create_app(core)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            reply = await http.post("/api/v1/chat", json={"agent_id": "tracer", "text": "read it"},
                                    headers={"traceparent": PARENT})
        assert reply.status_code == 200
        turn_id, conversation_id = reply.json()["turn_id"], reply.json()["conversation_id"]
    printed = printed_spans(capsys.readouterr().err)
    spans = {s["name"]: s for s in printed}

    server = spans["POST /api/v1/chat"]
    turn = spans["invoke_agent tracer"]
    models = [s for s in printed if s["name"] == "chat tool"]  # the tool call, then the answer
    tool = spans["execute_tool read_file"]
    assert server["context"]["trace_id"] == f"0x{TRACE_ID}"  # the caller's trace continues
    assert server["parent_id"] == "0x00f067aa0ba902b7"
    assert server["attributes"]["http.route"] == "/api/v1/chat"
    assert turn["parent_id"] == server["context"]["span_id"]
    assert turn["resource"]["attributes"]["service.name"] == "penguin-test"
    ids = {"penguin.agent_id": "tracer", "penguin.conversation_id": conversation_id, "penguin.turn_id": turn_id}
    assert turn["attributes"] | ids == turn["attributes"]
    assert turn["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert turn["attributes"]["gen_ai.usage.input_tokens"] > 0

    assert len(models) == 2
    for model in models:
        assert model["parent_id"] == turn["context"]["span_id"]
        assert model["attributes"] | ids == model["attributes"]
        assert model["attributes"]["gen_ai.operation.name"] == "chat"
        assert model["attributes"]["gen_ai.system"] == "scripted"
        assert model["attributes"]["gen_ai.request.model"] == "tool"
        assert model["attributes"]["gen_ai.usage.input_tokens"] > 0
        assert "gen_ai.usage.output_tokens" in model["attributes"]
    assert models[0]["attributes"]["gen_ai.response.finish_reasons"] == ["tool_calls"]

    assert tool["parent_id"] == turn["context"]["span_id"]
    assert tool["attributes"] | ids == tool["attributes"]
    assert tool["attributes"]["gen_ai.operation.name"] == "execute_tool"
    assert tool["attributes"]["gen_ai.tool.name"] == "read_file"
    assert tool["status"]["status_code"] == "UNSET"


async def test_tracing_is_off_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        assert not core.tracing.enabled
    assert exporters_from({"OTEL_TRACES_EXPORTER": "none"}) == ()
    assert exporters_from({"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_SDK_DISABLED": "true"}) == ()
    assert exporters_from({"OTEL_TRACES_EXPORTER": " Console , otlp"}) == ("console", "otlp")
    with pytest.raises(ValidationFailed, match="zipkin"):
        exporters_from({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValidationFailed, match="http/protobuf"):
        Tracing.from_environment({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    otlp = Tracing.from_environment({"OTEL_TRACES_EXPORTER": "otlp",
                                     "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert otlp.enabled
    otlp.shutdown()
