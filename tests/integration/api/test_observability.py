"""Logs, request ids and HTTP metrics of the API, against a real ``penguin serve`` and in-process apps."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from penguin_server import InProcessServer, PenguinServer
from prometheus_client.parser import text_string_to_metric_families

from penguin import PenguinCore
from penguin.telemetry.logs import ContextFilter, JsonFormatter, TextFormatter, bind_request, bind_turn


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PenguinServer]:
    proc = PenguinServer(tmp_path_factory.mktemp("json-logs"), env={"PENGUIN_LOG_FORMAT": "json"}).start()
    yield proc
    proc.stop()


def json_lines(server: PenguinServer) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in list(server.log) if line.startswith("{")]


def wait_for_lines(server: PenguinServer, predicate: object, timeout: float = 10.0) -> list[dict[str, object]]:
    """The JSON log lines matching ``predicate``, once there is at least one (the log is read by a thread)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in json_lines(server) if predicate(line)]  # type: ignore[operator]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_a_failed_turn_logs_exactly_one_line_with_its_ids_and_reason(json_server: PenguinServer) -> None:
    with httpx.Client(base_url=json_server.url, timeout=30) as http:
        assert http.post("/api/v1/agents", json={"agent_id": "broken", "model": "scripted:error"}).status_code == 201
        reply = http.post("/api/v1/chat", json={"agent_id": "broken", "text": "hello"},
                          headers={"X-Request-ID": "req-failed-1"})
        assert reply.status_code == 502
        assert reply.headers["x-request-id"] == "req-failed-1"
        # A later request proves the failure's line (if any) was written before it.
        assert http.get("/api/v1/health").status_code == 200
    lines = wait_for_lines(json_server, lambda line: line.get("agent_id") == "broken")
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["level"] == "WARNING" and line["logger"] == "penguin.engine"
    assert line["request_id"] == "req-failed-1"
    assert str(line["turn_id"]).startswith("turn") and line["conversation_id"]
    assert "scripted failure" in str(line["message"]) and "model-error" in str(line["message"])
    assert "exception" not in line  # a failed turn is a reason, not a traceback


def test_successful_turns_log_nothing_and_request_ids_are_made_when_missing(json_server: PenguinServer) -> None:
    before = len(json_server.log)
    with httpx.Client(base_url=json_server.url, timeout=30) as http:
        reply = http.post("/api/v1/chat", json={"agent_id": "fine", "text": "hello"})
        assert reply.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", reply.headers["x-request-id"])
        bad = http.get("/api/v1/health", headers={"X-Request-ID": "has spaces and\ttabs"})
        assert bad.headers["x-request-id"] != "has spaces and\ttabs"
        assert http.get("/api/v1/health").status_code == 200
    assert not [line for line in json_server.log[before:] if '"agent_id":"fine"' in line]


def test_http_metrics_use_route_templates_and_include_process_and_queue_metrics(json_server: PenguinServer) -> None:
    with httpx.Client(base_url=json_server.url, timeout=30) as http:
        http.post("/api/v1/chat", json={"agent_id": "metered", "text": "hello"})
        assert http.get("/api/v1/agents/metered").status_code == 200
        assert http.get("/api/v1/agents/nobody-here").status_code == 404
        assert http.get("/no/such/route").status_code == 404
        text = http.get("/metrics").text
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }

    def http_count(route: str, status: str, method: str = "GET") -> float:
        key = ("penguin_http_request_duration_seconds_count",
               (("method", method), ("route", route), ("status", status)))
        return got.get(key, 0.0)

    assert http_count("/api/v1/agents/{agent_id}", "200") >= 1
    assert http_count("/api/v1/agents/{agent_id}", "404") >= 1
    assert http_count("unmatched", "404") >= 1
    assert http_count("/api/v1/chat", "200", "POST") >= 1  # served by the fast path, still counted
    assert not any("nobody-here" in str(labels) for _, labels in got)
    assert got[("process_cpu_seconds_total", ())] > 0
    assert ("penguin_queue_depth", (("queue", "turns"),)) in got
    assert ("penguin_queue_depth", (("queue", "inbox"),)) in got


class Captured:
    """Every record of the ``penguin`` and ``uvicorn`` loggers, formatted as ``penguin serve`` does."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = io.StringIO()
        self.records: list[logging.LogRecord] = []
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(ContextFilter())
        self.handler.setFormatter(formatter)
        self.handler.addFilter(self._keep)
        self.loggers = [logging.getLogger("penguin"), logging.getLogger("uvicorn.error")]

    def _keep(self, record: logging.LogRecord) -> bool:
        self.records.append(record)
        return True

    def __enter__(self) -> Captured:
        for logger in self.loggers:
            logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger in self.loggers:
            logger.removeHandler(self.handler)


async def test_a_500_is_logged_once_with_one_traceback_and_its_request_id(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as core:
        server = InProcessServer(core)

        async def boom() -> None:
            raise RuntimeError("a bug in a route")

        server.app.add_api_route("/api/v1/boom", boom)
        with Captured(JsonFormatter()) as captured:
            async with server, httpx.AsyncClient(base_url=server.url) as http:
                reply = await http.get("/api/v1/boom", headers={"X-Request-ID": "req-500"})
                await asyncio.sleep(0)
        assert reply.status_code == 500 and reply.headers["x-request-id"] == "req-500"
        assert reply.json()["type"].endswith("internal-error")
    tracebacks = [r for r in captured.records if r.exc_info]
    assert len(tracebacks) == 1, [r.getMessage() for r in captured.records]
    logged = [orjson.loads(line) for line in captured.stream.getvalue().splitlines() if "req-500" in line]
    assert len(logged) == 1
    assert "RuntimeError: a bug in a route" in logged[0]["exception"]
    assert logged[0]["request_id"] == "req-500"


def test_text_lines_carry_the_bound_ids_after_the_message() -> None:
    record = logging.LogRecord("penguin.engine", logging.WARNING, __file__, 1, "turn failed: %s", ("x",), None)
    request = bind_request("r1")
    turn = bind_turn("a1", "conv1", "turn1")
    try:
        ContextFilter().filter(record)
    finally:
        turn.var.reset(turn)
        request.var.reset(request)
    line = TextFormatter().format(record)
    assert line.endswith(
        "WARNING penguin.engine: turn failed: x request_id=r1 agent_id=a1 conversation_id=conv1 turn_id=turn1"
    )
