"""End to end: planner, implementer and QA agents (scripted models) drive the charter gate over the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from penguin import PenguinCore, ScriptedModel, script_reply
from penguin.charter import MARKDOWN_PATH, GateState, parse
from penguin.models.base import ModelRequest
from penguin.models.scripted import Reply, last_user_text

CHARTER = """# Task Charter

## Goal

Add a --json flag to `penguin agent list`.

## Paths

- src/penguin/cli/main.py

## Acceptance Criteria

- [ ] AC1: prints every agent as JSON
- [ ] AC2: the table stays the default

## QA Checklist

- [ ] QA1: the flag is documented
"""


def planner_writing(markdown: str) -> ScriptedModel:
    """A planner that writes the charter with the charter_update tool, then says so."""

    def script(request: ModelRequest) -> Reply:
        if request.messages[-1].get("role") == "tool":
            return "charter written"
        return script_reply(charter_update={"markdown": markdown})

    return ScriptedModel(script)


class Recorder:
    """A scripted agent that plays replies in order and keeps the prompts it was given."""

    def __init__(self, *replies: str) -> None:
        self.prompts: list[str] = []
        self._replies = list(replies)

    def __call__(self, request: ModelRequest) -> Reply:
        self.prompts.append(last_user_text(request))
        return self._replies[min(len(self.prompts), len(self._replies)) - 1]


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        yield c


async def add_agent(core: PenguinCore, agent_id: str, script: ScriptedModel) -> None:
    core.models.register(f"scripted:{agent_id}", script)
    await core.create_agent(agent_id, model=f"scripted:{agent_id}")


async def test_qa_rejects_once_over_the_bus_then_approves(core: PenguinCore) -> None:
    implementer = Recorder("CHANGED: added the --json flag\nVERIFIED: ran penguin agent list --json",
                           "CHANGED: documented the flag\nVERIFIED: read docs/cli.md")
    qa = Recorder("[x] AC1: output parses as JSON\n[x] AC2: table unchanged\nREJECT: QA1 the flag is not documented",
                  "[x] QA1: docs/cli.md mentions --json\nAPPROVE")
    await add_agent(core, "planner", planner_writing(CHARTER))
    await add_agent(core, "impl", ScriptedModel(implementer))
    await add_agent(core, "qa", ScriptedModel(qa))

    result = await core.run_charter(goal="Add a --json flag to agent list", planner="planner", implementer="impl",
                                    qa="qa", parent="human", max_rounds=3)

    assert (result.outcome, result.rounds, result.reason) == ("approved", 2, "")
    charter = result.charter
    assert charter is not None and charter.state is GateState.APPROVED
    assert [(i.id, i.done, i.evidence) for i in charter.items] == [
        ("AC1", True, "output parses as JSON"), ("AC2", True, "table unchanged"),
        ("QA1", True, "docs/cli.md mentions --json")]
    assert [(c.author, c.summary, c.verification) for c in charter.changes] == [
        ("impl", "added the --json flag", "ran penguin agent list --json"),
        ("impl", "documented the flag", "read docs/cli.md")]
    assert await core.charter_get() == charter
    stored_json = orjson.loads((core.workspace.root / "context/TASK_CHARTER.json").read_bytes())
    assert stored_json["state"] == "approved"

    # The rejection travelled from QA to the implementer as a verdict envelope on the bus...
    (rejection,) = await core.list_messages(recipient="impl", message_type="verdict")
    assert (rejection.sender, rejection.correlation_id) == ("qa", result.run_id)
    assert rejection.content.startswith("REJECT: QA1 the flag is not documented")
    assert implementer.prompts[1] == rejection.content
    # ...and the final verdict went back to the parent.
    (verdict,) = await core.list_messages(recipient="human", message_type="verdict")
    assert (verdict.id, verdict.sender, verdict.content) == (result.message_id, "qa", "APPROVE")
    assert (verdict.metadata["state"], verdict.metadata["open_items"]) == ("approved", [])
    # Every hand-off of the run is on the bus under one correlation id.
    run = [e for e in await core.list_messages(limit=1000) if e.correlation_id == result.run_id
           and e.message_type in ("action", "verdict")]
    assert [(e.sender, e.recipient, e.message_type) for e in run] == [
        ("human", "planner", "action"), ("planner", "impl", "action"), ("impl", "qa", "action"),
        ("qa", "impl", "verdict"), ("impl", "qa", "action"), ("qa", "human", "verdict")]


async def test_a_placeholder_charter_halts_with_a_status_and_no_implementer_turn(core: PenguinCore) -> None:
    implementer = ScriptedModel(["CHANGED: should never run"])
    qa = ScriptedModel(["APPROVE"])
    placeholder = CHARTER.replace("prints every agent as JSON", "Pending")
    await add_agent(core, "lead", ScriptedModel(["noted"]))
    await add_agent(core, "planner", planner_writing(placeholder))
    await add_agent(core, "impl", implementer)
    await add_agent(core, "qa", qa)

    result = await core.run_charter(goal="Add a flag", planner="planner", implementer="impl", qa="qa", parent="lead")

    assert (result.outcome, result.rounds) == ("halted", 0)
    assert [(p.code, p.where) for p in result.problems] == [("placeholder", "item AC1")]
    assert (implementer.calls, qa.calls) == (0, 0)
    (status,) = await core.list_messages(recipient="lead", sender="impl", message_type="status")
    assert (status.id, status.sender, status.correlation_id) == (result.message_id, "impl", result.run_id)
    assert status.content.startswith("HALTED: the charter is not ready: item AC1: placeholder 'Pending'")
    assert status.metadata["problems"] == [p.to_dict() for p in result.problems]
    assert status.metadata["state"] == "draft"
    assert await core.list_messages(recipient="impl", message_type="action") == []
    assert [p.code for p in await core.charter_lint()] == ["placeholder"]


async def test_rounds_are_bounded_and_the_last_rejection_reaches_the_parent(core: PenguinCore) -> None:
    await add_agent(core, "planner", planner_writing(CHARTER))
    await add_agent(core, "impl", ScriptedModel(["CHANGED: tried\nVERIFIED: no"]))
    await add_agent(core, "qa", ScriptedModel(["REJECT: still broken"]))

    result = await core.run_charter(goal="x", planner="planner", implementer="impl", qa="qa", max_rounds=2)

    assert (result.outcome, result.rounds) == ("rejected", 2)
    assert result.charter is not None and result.charter.state is GateState.CHANGES_REQUESTED
    assert len(await core.list_messages(recipient="impl", message_type="verdict")) == 1
    (verdict,) = await core.list_messages(recipient="human", message_type="verdict")
    assert verdict.content == "REJECT: still broken"


async def test_an_approval_with_open_items_loops_back_instead_of_finishing(core: PenguinCore) -> None:
    await add_agent(core, "planner", planner_writing(CHARTER))
    await add_agent(core, "impl", ScriptedModel(["CHANGED: did it\nVERIFIED: yes"]))
    await add_agent(core, "qa", ScriptedModel(["[x] AC1\nAPPROVE"]))

    result = await core.run_charter(goal="x", planner="planner", implementer="impl", qa="qa", max_rounds=1)

    assert result.outcome == "rejected"
    assert result.reason == "changes still requested after 1 round(s): cannot approve: items not marked done: AC2, QA1"


async def test_a_blocked_implementer_halts_with_its_reason(core: PenguinCore) -> None:
    await add_agent(core, "planner", planner_writing(CHARTER))
    await add_agent(core, "impl", ScriptedModel(["BLOCKED: which JSON schema?"]))
    await add_agent(core, "qa", ScriptedModel(["APPROVE"]))

    result = await core.run_charter(goal="x", planner="planner", implementer="impl", qa="qa")

    assert (result.outcome, result.reason) == ("halted", "impl is blocked: which JSON schema?")
    (status,) = await core.list_messages(recipient="human", sender="impl", message_type="status")
    assert status.sender == "impl"


async def test_a_hand_written_charter_runs_without_a_planner(core: PenguinCore) -> None:
    core.workspace.write_bytes(MARKDOWN_PATH, CHARTER.encode())
    await add_agent(core, "impl", ScriptedModel(["CHANGED: did it"]))
    await add_agent(core, "qa", ScriptedModel(["[x] AC1\n[x] AC2\n[x] QA1\nAPPROVE"]))

    result = await core.run_charter(implementer="impl", qa="qa")

    assert (result.outcome, result.rounds) == ("approved", 1)


async def test_charter_tools_read_and_update_through_the_gate(core: PenguinCore) -> None:
    await add_agent(core, "planner", ScriptedModel([script_reply(charter_read={}), "done"]))
    read = await core.chat("read it", agent_id="planner")
    assert "No charter yet" in read.tool_calls[0]["result"]
    update = ScriptedModel([script_reply(charter_update={"goal": "Ship", "paths": ["./src//a.py"],
                                                         "acceptance": ["works", "AC9: fast"]}), "ok",
                            script_reply(charter_update={"change": "early"}), "ok"])
    await add_agent(core, "writer", update)
    result = await core.chat("write it", agent_id="writer")
    assert "Lint: no problems." in result.tool_calls[0]["result"]
    charter = await core.charter_get()
    assert (charter.paths, [i.id for i in charter.items]) == (("src/a.py",), ["AC1", "AC9"])
    refused = await core.chat("log a change", agent_id="writer")
    assert "cannot record a change in a charter in state 'draft'" in refused.tool_calls[0]["result"]


def test_cli_show_and_lint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from penguin.cli.main import app

    monkeypatch.setenv("PENGUIN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PENGUIN_MODEL", "scripted:echo")
    runner = CliRunner()
    missing = runner.invoke(app, ["charter", "show"])
    assert missing.exit_code == 2 and "no charter" in missing.output
    (tmp_path / "workspace/context").mkdir(parents=True)
    (tmp_path / "workspace" / MARKDOWN_PATH).write_text(CHARTER.replace("src/penguin/cli/main.py", "../x"))
    shown = runner.invoke(app, ["charter", "show"])
    assert shown.exit_code == 0 and parse(shown.output).paths == ("../x",)
    linted = runner.invoke(app, ["charter", "lint"])
    assert linted.exit_code == 1
    assert "escaping_path\tpath ../x: the path has a '..' component" in linted.output
