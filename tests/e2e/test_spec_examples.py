"""The product page's curl and Python examples, run verbatim against ``penguin serve``.

The examples are read from docs/api.md (and checked against the product page when it is present),
so the documentation cannot drift from what runs. The server listens on port 8000, as the
examples assume; only when something else holds that port is the port substituted.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from penguin_server import PenguinServer, start_server

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "api.md"
SPEC = Path("/work/shared/spec/multi_agents.md")


def example(name: str) -> str:
    """The fenced block that follows ``<!-- example: name -->`` in docs/api.md."""
    match = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert match is not None, f"docs/api.md has no example {name!r}"
    return match.group(1)


CURL = example("spec-curl")
PYTHON = example("spec-python")


def test_the_examples_are_the_product_pages() -> None:
    assert CURL.startswith("curl -X POST http://localhost:8000/api/v1/chat")
    assert "PenguinClient()" in PYTHON
    if SPEC.exists():  # the page lives beside the repository in the product workspace
        page = SPEC.read_text()
        assert CURL in page and PYTHON in page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PenguinServer]:
    proc = start_server(tmp_path_factory.mktemp("spec-server"), prefer_port=8000)
    yield proc
    proc.stop()


def on_port(text: str, server: PenguinServer) -> str:
    return text if server.port == 8000 else text.replace("localhost:8000", f"localhost:{server.port}")


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PENGUIN_")}


def test_curl_example(server: PenguinServer) -> None:
    def run_curl() -> dict[str, object]:
        result = subprocess.run(["bash", "-c", on_port(CURL, server)], capture_output=True, text=True, timeout=60,
                                check=True)
        return dict(orjson.loads(result.stdout))

    first = run_curl()
    assert first["agent_id"] == "support" and first["response"] == "Summarize the latest tickets"
    assert first["created"] is True and first["status"] == "completed"
    second = run_curl()  # "Subsequent requests using agent_id support continue the same conversation"
    assert second["conversation_id"] == first["conversation_id"] and second["created"] is False
    engineering = subprocess.run(
        ["bash", "-c", on_port(CURL, server).replace('"support"', '"engineering"')],
        capture_output=True, text=True, timeout=60, check=True,
    )
    other = orjson.loads(engineering.stdout)
    assert other["agent_id"] == "engineering" and other["conversation_id"] != first["conversation_id"]
    with httpx.Client(base_url=server.url) as http:
        support_log = http.get(f"/api/v1/conversations/{first['conversation_id']}/history").json()["messages"]
        engineering_log = http.get(f"/api/v1/conversations/{other['conversation_id']}/history").json()["messages"]
    assert [m["agent_id"] for m in support_log] == ["support"] * 4
    assert [m["agent_id"] for m in engineering_log] == ["engineering"] * 2


def test_python_example(server: PenguinServer, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(PYTHON if server.port == 8000 else PYTHON.replace(
        "PenguinClient()", f'PenguinClient("http://localhost:{server.port}")'))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                            env=clean_env(), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Generate a changelog for v0.3.3\n"
    with httpx.Client(base_url=server.url) as http:
        release = http.get("/api/v1/agents/release").json()
        conv = http.get("/api/v1/agents/release/conversations").json()[0]
        log = http.get(f"/api/v1/conversations/{conv['id']}/history").json()["messages"]
    assert release["agent_id"] == "release"
    assert log[0]["metadata"] == {"context": {"repository": "penguin"}}
