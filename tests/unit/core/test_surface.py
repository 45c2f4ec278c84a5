"""The public surface: exports, the sync helper's extras, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import penguin
from penguin import PenguinAgent
from penguin.errors import InvalidModelString
from penguin.models.registry import ModelRef


def test_exported_members() -> None:
    exported = set(penguin.__all__)
    assert {
        "PenguinAgent",
        "PenguinCore",
        "ChatResult",
        "AgentSpec",
        "Settings",
        "ScriptedModel",
        "ModelError",
        "InvalidAgentId",
        "TurnCancelled",
    } <= exported
    for name in exported:
        assert hasattr(penguin, name), name
    public = {n for n in dir(penguin) if not n.startswith("_") and n[0].isupper()}
    assert public <= exported | {"Any"}, public - exported


@pytest.mark.parametrize(
    "value",
    [
        "openai:gpt-4o-mini",
        "anthropic:claude-sonnet-4-5",
        "local:default",
        "scripted:echo",
        "openai:meta-llama/Llama-3-8B",
    ],
)
def test_model_strings_parse(value: str) -> None:
    assert str(ModelRef.parse(value)) == value


@pytest.mark.parametrize("value", ["", "gpt-4o", ":x", "openai:", "Open AI:x", "openai:has space", None, 3])
def test_malformed_model_strings(value: object) -> None:
    with pytest.raises(InvalidModelString) as info:
        ModelRef.parse(value)
    assert info.value.field == "model"


def test_penguin_agent_helpers(tmp_path: Path) -> None:
    (tmp_path / "AGENTS.md").write_text("Agents must write tests.")
    (tmp_path / "context").mkdir()
    (tmp_path / "context" / "TASK_CHARTER.md").write_text("# Charter")
    with PenguinAgent(data_dir=tmp_path / "data", model="scripted:echo", project_dir=tmp_path) as p:
        assert p.project_docs == {"AGENTS.md": "Agents must write tests."}
        assert p.charter_paths == [tmp_path / "context" / "TASK_CHARTER.md"]
        spec = p.register_persona("qa", "You review work.", with_project_docs=True, roles=["qa"])
        assert "Agents must write tests." in spec.system_prompt and spec.roles == ("qa",)
        events = list(p.stream("streamed reply", agent_id="qa"))
        assert events[-1].type == "final" and events[-1].data["response"] == "streamed reply"
        cp = p.checkpoint("one", agent_id="qa")
        p.chat("later", agent_id="qa")
        assert p.rollback(cp.id).last_seq == 2
        assert [m.content for m in p.history("qa")] == ["streamed reply"] * 2
        assert p.branch(cp.id).kind == "branch"
        assert p.switch_model("qa", "scripted:tool").model == "scripted:tool"
        task = p.run_task("do it TASK_COMPLETE", agent_id="default", timeout=5)
        assert task.status == "completed"
    with pytest.raises(RuntimeError, match="closed"):
        p.chat("after close")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PENGUIN_DATA_DIR": str(tmp_path), "PENGUIN_MODEL": "scripted:echo"}
    return subprocess.run(
        [sys.executable, "-m", "penguin.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )


def test_cli_chat_and_agents(tmp_path: Path) -> None:
    out = _cli(tmp_path, "chat", "hello cli", "--agent", "support")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello cli"
    created = _cli(tmp_path, "agent", "create", "release", "--persona", "Writes notes", "--role", "writer")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["roles"] == ["writer"]
    listing = _cli(tmp_path, "agent", "list", "--json")
    assert [a["agent_id"] for a in json.loads(listing.stdout)] == ["default", "release", "support"]
    shown = _cli(tmp_path, "agent", "show", "release")
    assert json.loads(shown.stdout)["system_prompt"] == "Writes notes"
    assert _cli(tmp_path, "agent", "remove", "release").returncode == 0
    missing = _cli(tmp_path, "agent", "show", "release")
    assert missing.returncode == 2 and "no agent 'release'" in missing.stderr
    bad = _cli(tmp_path, "chat", "x", "--agent", "bad id")
    assert bad.returncode != 0 and "^[A-Za-z0-9_-]{1,64}$" in (bad.stderr + bad.stdout)
    as_json = _cli(tmp_path, "chat", "j", "--json", "--agent", "support")
    body = json.loads(as_json.stdout)
    assert body["response"] == "j" and body["agent_id"] == "support"


def test_penguin_agent_coordination_and_memory(tmp_path: Path) -> None:
    with PenguinAgent(data_dir=tmp_path, model="scripted:echo") as p:
        for name in ("planner", "implementer", "qa"):
            p.create_agent(name, roles=[name])
        p.assign_role("planner", ["planner"])
        p.assign_role("implementer", ["implementer"])
        p.assign_role("qa", ["qa"])
        lineage = p.role_chain(["planner", "implementer", "qa"], "ship it")
        assert [s.output for s in lineage.steps] == ["ship it"] * 3
        receipt = p.send_message("human", "qa", "please review")
        final = p.wait_receipt(receipt.message_id, timeout=10)
        assert final.status == "processed"
        assert [m.content for m in p.history("qa")][-2:] == ["please review", "please review"]
        p.memory_add("The deploy key rotates every Monday.", agent_id="planner", scope="shared")
        hits = p.memory_search("when does the deploy key rotate", agent_id="qa")
        assert hits and "Monday" in hits[0].memory.text
        child = p.spawn_agent("planner", "planner-child")
        assert child.parent_id == "planner"
        result = p.delegate("planner", "planner-child", "summarise TASK_COMPLETE", wait=True, timeout=10)
        assert result.status == "completed"


def test_penguin_agent_discovers_workspace_charters(tmp_path: Path) -> None:
    with PenguinAgent(data_dir=tmp_path / "data", model="scripted:echo", project_dir=tmp_path) as p:
        assert p.charter_paths == []
        charter = p.core.workspace.root / "context" / "TASK_CHARTER.json"
        charter.parent.mkdir(parents=True)
        charter.write_text("{}")
        assert p.charter_paths == [charter]


@pytest.mark.parametrize(("variable", "value"), [("PENGUIN_ACCESS_LOG", "maybe"), ("PENGUIN_PORT", "abc")])
def test_a_bad_setting_is_named_without_a_traceback(tmp_path: Path, variable: str, value: str) -> None:
    env = {**os.environ, "PENGUIN_DATA_DIR": str(tmp_path), variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "penguin.cli.main", "serve", "--port", "1"],
        capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert variable in result.stderr and "Traceback" not in result.stderr, result.stderr
