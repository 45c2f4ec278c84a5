"""Compaction: summaries replace old turns in the context, and their facts stay recallable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from penguin import PenguinCore
from penguin.conversations.context import assemble, estimate_tokens
from penguin.conversations.messages import Message
from penguin.memory.hooks import RECALL_HEADER
from penguin.memory.summaries import SUMMARY_PROMPT, _measure, extractive_summary
from penguin.models.base import ModelRequest
from penguin.models.scripted import BUILTIN_SCRIPTS, ScriptedModel

FACT = "Remember: the staging database password rotates every Tuesday at 04:00 UTC (vault job VR-7731)."
FILLER = "Status update {n}: the nightly build passed, the dashboard looks green and nothing else happened."


def msg(seq: int, role: str, content: str, **fields: Any) -> Message:
    return Message(
        conversation_id="c",
        agent_id="a",
        sender="human" if role == "user" else "a",
        role=role,  # type: ignore[arg-type]
        content=content,
        seq=seq,
        **fields,
    )


def summary(seq: int, to_seq: int, text: str) -> Message:
    return msg(seq, "system", text, message_type="summary", metadata={"covers": {"from_seq": 1, "to_seq": to_seq}})


def test_assemble_sends_the_latest_summary_in_place_of_what_it_covers() -> None:
    history = [
        msg(1, "user", "one"),
        msg(2, "assistant", "two"),
        msg(3, "user", "three"),
        msg(4, "assistant", "four"),
        summary(5, 3, "S1"),
        msg(6, "user", "six"),
        msg(7, "assistant", "seven"),
        summary(8, 6, "S2"),
        msg(9, "user", "nine"),
        msg(10, "assistant", "ten"),
    ]
    assert [m["content"] for m in assemble("persona", history, 10_000)] == ["persona", "S2", "seven", "nine", "ten"]
    # A later summary that covers less than an earlier one's position still supersedes it.
    history[7] = summary(8, 4, "S2")
    assert [m["content"] for m in assemble("", history, 10_000)] == ["S2", "six", "seven", "nine", "ten"]
    # Unsaved messages (seq 0) after the summary are always part of the window.
    pending = msg(0, "user", "new")
    assert [m["content"] for m in assemble("", [*history, pending], 10_000)][-1] == "new"


def test_extractive_summary_keeps_rare_facts_drops_echoes_and_fits() -> None:
    source = [
        msg(1, "user", FACT),
        msg(2, "assistant", FACT),  # an echo adds nothing
        *(msg(3 + i, "user", FILLER.format(n=i)) for i in range(6)),
    ]
    text = extractive_summary(None, source, max_chars=400)
    assert len(text) <= 400
    assert text.count("VR-7731") == 1
    assert text.splitlines()[0] == f"- user: {FACT}"


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[PenguinCore]:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo") as c:
        yield c


class Recorder:
    """A scripted model that records every request and answers briefly."""

    def __init__(self) -> None:
        self.requests: list[ModelRequest] = []

    def __call__(self, request: ModelRequest) -> str:
        self.requests.append(request)
        return "noted"


def request_tokens(request: ModelRequest) -> int:
    return sum(len(m.get("content") or "") // 4 + 4 for m in request.messages)


async def test_a_long_conversation_keeps_working_past_its_budget_and_recalls_a_compacted_fact(
    core: PenguinCore,
) -> None:
    recorder = Recorder()
    core.models.register("scripted:recorder", ScriptedModel(recorder, name="scripted:recorder"))
    await core.create_agent("support", model="scripted:recorder", context_tokens=256, metadata={"memory_recall_k": 3})

    await core.chat(FACT, agent_id="support")
    for n in range(40):
        await core.chat(FILLER.format(n=n), agent_id="support")
    result = await core.chat("When does the staging database password rotate?", agent_id="support")
    assert result.text == "noted"

    history = await core.history("support")
    summaries = [m for m in history if m.message_type == "summary"]
    assert len(summaries) >= 5
    assert all(m.role == "system" and m.metadata and m.metadata["method"] == "extractive" for m in summaries)
    last = summaries[-1]
    assert last.metadata is not None
    covered = last.metadata["covers"]
    assert covered["to_seq"] < last.seq and covered["message_ids"]
    assert covered["previous_summary_id"] == summaries[-2].id
    # Every request stayed within the agent's 256-token budget (give or take the estimate's rounding).
    assert max(request_tokens(r) for r in recorder.requests) <= 256 + 8
    final = recorder.requests[-1].messages
    assert FACT not in [m["content"] for m in final if m["role"] == "user"]
    recalled = [m["content"] for m in final if m["role"] == "system" and m["content"].startswith(RECALL_HEADER)]
    assert len(recalled) == 1 and "Tuesday at 04:00 UTC" in recalled[0]
    assert final[-2]["content"] == recalled[0] and final[-1]["content"].startswith("When does")
    # Each summary is also a memory written by the agent, private to it by default.
    memories = await core.memory_list(agent_id="support", tags=["summary"], limit=100)
    assert len(memories) == len(summaries)
    assert {(m.author, m.scope, m.source_conversation_id) for m in memories} == {
        ("support", "agent", last.conversation_id)
    }
    assert {m.source_message_id for m in memories} == {s.id for s in summaries}
    assert await core.memory_search("staging database password", agent_id="sales") == []


async def test_the_agents_model_writes_the_summary_when_it_can(tmp_path: Path) -> None:
    seen: list[ModelRequest] = []

    def summarizer(request: ModelRequest) -> str:
        seen.append(request)
        return "The user set the deploy window to Friday 18:00 CET."

    async with PenguinCore(
        data_dir=tmp_path,
        model="scripted:echo",
        memory_summary_model="scripted:summarizer",
        memory_summary_scope="shared",
    ) as core:
        core.models.register("scripted:summarizer", ScriptedModel(summarizer, name="scripted:summarizer"))
        await core.create_agent("ops", context_tokens=256)
        await core.chat("Set the deploy window to Friday 18:00 CET, please. " * 3, agent_id="ops")
        for n in range(6):
            await core.chat(FILLER.format(n=n), agent_id="ops")
        first = next(m for m in await core.history("ops") if m.message_type == "summary")
        assert first.content.endswith("\nThe user set the deploy window to Friday 18:00 CET.")
        assert first.metadata is not None and first.metadata["method"] == "model"
        assert first.metadata["model"] == "scripted:summarizer"
        assert seen[0].messages[0] == {"role": "system", "content": SUMMARY_PROMPT}
        assert "Set the deploy window" in seen[0].messages[1]["content"]
        # Shared by setting: another agent finds it.
        hits = await core.memory_search("deploy window", agent_id="release")
        assert hits and hits[0].memory.author == "ops" and hits[0].memory.scope == "shared"


async def test_a_failing_summary_model_falls_back_to_an_extractive_summary(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", memory_summary_model="scripted:error") as core:
        await core.create_agent("ops", context_tokens=256)
        await core.chat(FACT, agent_id="ops")
        for n in range(6):
            await core.chat(FILLER.format(n=n), agent_id="ops")
        summaries = [m for m in await core.history("ops") if m.message_type == "summary"]
        assert summaries and summaries[0].metadata is not None
        assert summaries[0].metadata["method"] == "extractive"
        assert "VR-7731" in summaries[0].content


async def test_short_conversations_are_never_compacted_and_the_estimate_stays_exact(core: PenguinCore) -> None:
    await core.create_agent("brief", context_tokens=4096)
    for n in range(10):
        await core.chat(FILLER.format(n=n), agent_id="brief")
    history = await core.history("brief")
    assert not [m for m in history if m.message_type == "summary"]
    conversation = await core.conversations.default_for("brief")
    tracked = core.memory_hooks.compactor.window_tokens(
        conversation.id, await core.conversations.messages(conversation.id)
    )
    assert tracked == _measure(history).tokens == sum(estimate_tokens(m) for m in history)
    assert (await core.memory_stats()).total == 0


async def test_compaction_never_splits_a_tool_call_from_its_result(core: PenguinCore) -> None:
    requests: list[ModelRequest] = []

    def tool_then_answer(request: ModelRequest) -> Any:
        requests.append(request)
        return BUILTIN_SCRIPTS["tool"](request)

    core.models.register("scripted:tooler", ScriptedModel(tool_then_answer, name="scripted:tooler"))
    await core.create_agent(
        "worker",
        model="scripted:tooler",
        context_tokens=256,
        model_parameters={"tool": "memory_search", "arguments": {"query": "deploy checklist for the gateway"}},
    )
    for n in range(12):
        await core.chat(FILLER.format(n=n), agent_id="worker")
    assert [m for m in await core.history("worker") if m.message_type == "summary"]
    for request in requests:
        body = [m for m in request.messages if m["role"] != "system"]
        assert body[0]["role"] != "tool"
        for i, m in enumerate(body):
            if m["role"] == "tool":
                calls = (
                    [c["id"] for c in body[i - 1].get("tool_calls") or []] if body[i - 1]["role"] == "assistant" else []
                )
                assert m["tool_call_id"] in calls
