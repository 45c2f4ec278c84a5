from __future__ import annotations

import asyncio

import pytest

from penguin import ModelError, ModelRequest, PenguinCore, ScriptedModel, ToolContext, script_reply
from penguin.conversations.context import assemble
from penguin.conversations.messages import Message
from penguin.errors import InvalidModelString, ValidationFailed


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_tool_loop_runs_tools_and_persists_them(core: PenguinCore) -> None:
    core.tools.register(add)

    def script(req: ModelRequest) -> object:
        last = req.messages[-1]
        if last["role"] == "tool":
            return f"the sum is {last['content']}"
        return script_reply(add={"a": 2, "b": 3})

    core.models.register("scripted:adder", ScriptedModel(script, name="scripted:adder"))
    await core.create_agent("calc", model="scripted:adder")
    result = await core.chat("what is 2+3?", agent_id="calc")
    assert str(result) == "the sum is 5"
    assert result.iterations == 2
    assert [(c["name"], c["result"], c["error"]) for c in result.tool_calls] == [("add", "5", None)]
    history = await core.history("calc")
    assert [(m.role, m.message_type) for m in history] == [
        ("user", "message"),
        ("assistant", "action"),
        ("tool", "action"),
        ("assistant", "message"),
    ]
    tool_msg = history[2]
    assert tool_msg.tool_call_id == history[1].tool_calls[0]["id"] and tool_msg.name == "add"
    assert tool_msg.metadata is not None and tool_msg.metadata["duration_ms"] >= 0


async def test_tool_errors_go_back_to_the_model(core: PenguinCore) -> None:
    def boom(ctx: ToolContext) -> str:
        raise RuntimeError(f"broken for {ctx.agent_id}")

    core.tools.register(boom)
    seen: list[str] = []

    def script(req: ModelRequest) -> object:
        last = req.messages[-1]
        if last["role"] == "tool":
            seen.append(last["content"])
            return "recovered"
        return script_reply(boom={}, add={"a": "x", "b": 1}, nosuch={})

    core.tools.register(add)
    core.models.register("scripted:b", ScriptedModel(script))
    result = await core.chat("go", agent_id="t", model="scripted:b")
    assert result.text == "recovered"
    errors = {c["name"]: c["error"] for c in result.tool_calls}
    assert errors["boom"] == "RuntimeError: broken for t"
    assert "invalid arguments for add" in errors["add"]
    assert "unknown tool 'nosuch'" in errors["nosuch"]


async def test_max_iterations_bounds_the_loop(core: PenguinCore) -> None:
    core.tools.register(add)
    await core.create_agent(
        "loop", model="scripted:tool", model_parameters={"tool": "add", "arguments": {"a": 1, "b": 1}}
    )

    async def always_call(req: ModelRequest) -> object:
        return script_reply("thinking", add={"a": 1, "b": 1})

    core.models.register("scripted:forever", ScriptedModel(always_call))
    result = await core.chat("go", agent_id="loop", model="scripted:forever", max_iterations=3)
    assert result.status == "max_iterations" and result.iterations == 3 and len(result.tool_calls) == 2
    with pytest.raises(ValidationFailed):
        await core.chat("go", agent_id="loop", max_iterations=0)


async def test_per_call_model_override_and_switch_model_isolation(core: PenguinCore) -> None:
    core.models.register("scripted:upper", ScriptedModel(lambda r: str(r.messages[-1]["content"]).upper()))
    await core.create_agent("a", model="scripted:echo")
    await core.create_agent("b", model="scripted:echo")
    assert (await core.chat("hi", agent_id="a", model="scripted:upper")).text == "HI"
    assert core.get_agent("a").model == "scripted:echo"  # override did not stick
    await core.switch_model("a", "scripted:upper")
    assert (await core.chat("hi", agent_id="a")).text == "HI"
    assert (await core.chat("hi", agent_id="b")).text == "hi"
    with pytest.raises(InvalidModelString):
        await core.switch_model("a", "not a model")
    with pytest.raises(InvalidModelString):
        await core.chat("x", agent_id="a", model=":nothing")


async def test_model_failure_is_recorded_and_raised(core: PenguinCore) -> None:
    with pytest.raises(ModelError) as info:
        await core.chat("hello", agent_id="f", model="scripted:error")
    assert info.value.provider == "scripted" and info.value.status_code == 500
    history = await core.history("f")
    assert [(m.role, m.message_type) for m in history] == [("user", "message"), ("system", "status")]
    assert history[1].metadata is not None and history[1].metadata["status"] == "failed"
    # the failed turn does not poison the next one
    assert (await core.chat("again", agent_id="f")).text == "again"


async def test_context_is_shown_to_the_model_but_not_stored_as_text(core: PenguinCore) -> None:
    seen: list[list[dict[str, object]]] = []

    def script(req: ModelRequest) -> str:
        seen.append(list(req.messages))
        return "ok"

    core.models.register("scripted:spy", ScriptedModel(script))
    await core.create_agent("release", model="scripted:spy", system_prompt="You write changelogs.")
    await core.chat("Generate a changelog", agent_id="release", context={"repository": "penguin"})
    msgs = seen[0]
    assert msgs[0] == {"role": "system", "content": "You write changelogs."}
    assert msgs[1]["role"] == "system" and '"repository":"penguin"' in str(msgs[1]["content"])
    assert msgs[2] == {"role": "user", "content": "Generate a changelog"}
    assert (await core.history("release"))[0].content == "Generate a changelog"


async def test_streaming_events(core: PenguinCore) -> None:
    await core.create_agent("s", model_parameters={"chunk": 3})
    events = [e async for e in core.stream_chat("hello world", agent_id="s")]
    kinds = [e.type for e in events]
    assert kinds[0] == "start" and kinds[-1] == "final"
    assert "".join(e.data["text"] for e in events if e.type == "delta") == "hello world"
    assert events[-1].data["response"] == "hello world"
    assert all(e.agent_id == "s" for e in events)
    errors = [e async for e in core.stream_chat("x", agent_id="bad id")]
    assert [e.type for e in errors] == ["error"] and errors[0].data["status"] == 422


def _msg(role: str, content: str, **kw: object) -> Message:
    return Message(conversation_id="c", agent_id="a", sender="x", role=role, content=content, **kw)  # type: ignore[arg-type]


def test_context_budget_keeps_newest_and_never_orphans_tool_results() -> None:
    history = [
        _msg("user", "u" * 400),
        _msg(
            "assistant", "", tool_calls=[{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
        ),
        _msg("tool", "r" * 40, tool_call_id="1"),
        _msg("assistant", "done"),
        _msg("user", "next"),
    ]
    full = assemble("sys", history, 10_000)
    assert [m["role"] for m in full] == ["system", "user", "assistant", "tool", "assistant", "user"]
    tight = assemble("sys", history, 30)
    assert [m["role"] for m in tight] == ["system", "assistant", "user"]
    assert assemble("", history, 1) == [history[-1].wire()]
    status = _msg("system", "turn failed", message_type="status")
    assert assemble("", [status, history[-1]], 100) == [history[-1].wire()]


async def test_empty_or_huge_text_rejected(core: PenguinCore) -> None:
    with pytest.raises(ValidationFailed):
        await core.chat("   ")
    with pytest.raises(ValidationFailed):
        await core.chat("x" * 1_000_001)
    with pytest.raises(ValidationFailed):
        await core.chat(123)  # type: ignore[arg-type]
    assert await core.history("default") == []


async def test_tasks_run_by_agent_and_by_role(core: PenguinCore) -> None:
    replies = iter(["step one", "final answer TASK_COMPLETE"])
    core.models.register("scripted:worker", ScriptedModel(lambda r: next(replies)))
    await core.create_agent("worker", model="scripted:worker", roles=["implementer"])
    task = await core.run_task("build it", agent_role="implementer", max_iterations=5)
    assert task.agent_id == "worker"
    done = await core.wait_task(task.id, timeout=5)
    assert done.status == "completed" and done.result == "final answer"
    assert done.progress["iteration"] == 2 and done.progress["stop_reason"] == "completed"
    assert (await core.get_task(task.id)).status == "completed"
    bounded = await core.wait_task((await core.run_task("loop", agent_id="default", max_iterations=2)).id, 5)
    assert bounded.progress["stop_reason"] == "max_iterations"


async def test_task_cancel(core: PenguinCore) -> None:
    await core.create_agent("slow", model_parameters={"delay": 5})
    task = await core.run_task("wait", agent_id="slow")
    while not core.agent_status("slow")["running"]:  # noqa: ASYNC110 - status is polled state
        await asyncio.sleep(0.005)
    await core.cancel_task(task.id)
    assert (await core.get_task(task.id)).status == "cancelled"
    assert [m.message_type for m in await core.history(conversation_id=task.conversation_id)] == ["message", "status"]
