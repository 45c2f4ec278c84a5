"""Property-based fuzzing of the OpenAPI document (schemathesis): no input gets a 5xx.

Runs against its own ``penguin serve`` process (the fuzzer creates agents, pauses them, starts
tasks...), with valid and invalid inputs generated from the schema, a bounded number of examples
per operation, and checks that every answer is below 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from penguin_server import PenguinServer
from schemathesis.checks import not_a_server_error

MAX_EXAMPLES = 20
CONFIG = {
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    "request-timeout": 20,
}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PenguinServer]:
    # The access log (off by default) is how the fixture counts the answers and their statuses.
    proc = PenguinServer(tmp_path_factory.mktemp("penguin-fuzz"), env={"PENGUIN_ACCESS_LOG": "true"}).start()
    yield proc
    proc.stop()
    log = "".join(proc.log)
    statuses = re.findall(r'HTTP/1.1" (\d{3})', log)
    assert len(statuses) > 500  # the fuzzer really ran (about 1 100 requests)
    assert not [s for s in statuses if s.startswith("5")] and "Traceback" not in log, log


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_server: PenguinServer) -> Any:
    config = schemathesis.Config.from_dict(CONFIG)
    schema = schemathesis.openapi.from_url(f"{fuzz_server.url}/openapi.json", config=config)
    # Pausing an agent holds its chats until resume: a fuzzer that pauses ``default`` and then
    # chats to it would wait forever, which is the documented behaviour, not a bug.
    return schema.exclude(path_regex=r"/pause$")


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_gets_a_server_error(case: schemathesis.Case[Any]) -> None:
    response = case.call(timeout=20)
    case.validate_response(response, checks=[not_a_server_error])


def test_fuzzing_covers_every_operation(fuzz_schema: Any) -> None:
    operations = {(op.ok().method.upper(), op.ok().path) for op in fuzz_schema.get_all_operations()}
    assert len(operations) >= 20
    assert ("POST", "/api/v1/chat") in operations
    assert ("GET", "/api/v1/conversations/{conversation_id}/history") in operations
