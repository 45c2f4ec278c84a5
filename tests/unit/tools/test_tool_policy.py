"""Per-agent tool policy: rate windows, task quotas, concurrency, timeouts, fault isolation, stats."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from penguin.agents.spec import AgentSpec, ToolPolicy
from penguin.errors import ToolError
from penguin.tools.base import ToolContext, ToolOutcome
from penguin.tools.policy import ToolCallInfo, ToolPolicyEnforcer
from penguin.tools.registry import ToolRegistry
from penguin.tools.sandbox import Workspace
from penguin.tools.workspace import register_builtin_tools


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ping() -> str:
    """Answer pong."""
    return "pong"


def other() -> str:
    """Another tool."""
    return "other"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry(clock: FakeClock) -> ToolRegistry:
    reg = ToolRegistry(policy=ToolPolicyEnforcer(clock=clock))
    reg.register(ping)
    reg.register(other)
    return reg


def agent(agent_id: str = "a1", **policy: object) -> AgentSpec:
    return AgentSpec(agent_id=agent_id, tool_policy=ToolPolicy.from_dict(policy))


async def call(
    registry: ToolRegistry, spec: AgentSpec, name: str = "ping", *, task_id: str | None = None, **args: object
) -> ToolOutcome:
    ctx = ToolContext(agent_id=spec.agent_id, conversation_id="c", turn_id="t", task_id=task_id)
    return await registry.call(spec, ctx, "id", name, orjson.dumps(args).decode())


async def denials(
    registry: ToolRegistry, spec: AgentSpec, n: int, name: str = "ping", *, task_id: str | None = None
) -> list[str | None]:
    return [(await call(registry, spec, name, task_id=task_id)).denied for _ in range(n)]


# -- rate limits ------------------------------------------------------------------------------------

async def test_agent_rate_limit_is_a_sliding_minute(registry: ToolRegistry, clock: FakeClock) -> None:
    spec = agent(rate_per_minute=3)
    assert await denials(registry, spec, 2) == [None, None]
    clock.now += 30
    assert await denials(registry, spec, 2) == [None, "rate_limit"]
    refused = await call(registry, spec)
    assert refused.error == "rate limit: agent 'a1' may make 3 tool call(s) per minute; retry in 30.0s"
    assert refused.result == f"error: {refused.error}"
    clock.now += 30  # the first two calls leave the window; the one at +30 stays
    assert await denials(registry, spec, 3) == [None, None, "rate_limit"]
    assert await denials(registry, agent("a2", rate_per_minute=3), 3) == [None] * 3  # other agents unaffected


async def test_per_tool_rate_limit_uses_the_tightest_matching_glob(registry: ToolRegistry) -> None:
    spec = agent(tool_rate_per_minute={"p*": 5, "ping": 2})
    assert await denials(registry, spec, 3) == [None, None, "tool_rate_limit"]
    assert await denials(registry, spec, 3, "other") == [None, None, None]
    refused = await call(registry, spec)
    assert refused.error is not None and refused.error.startswith(
        "rate limit: tool 'ping' of 'a1' may make 2 tool call(s) per minute"
    )


# -- task quotas ------------------------------------------------------------------------------------

async def test_task_quota_counts_per_task(registry: ToolRegistry) -> None:
    spec = agent(task_quota=3)
    assert await denials(registry, spec, 4, task_id="t1") == [None, None, None, "quota"]
    assert await denials(registry, spec, 3, task_id="t2") == [None, None, None]
    assert await denials(registry, spec, 5) == [None] * 5  # no task, no task quota
    refused = await call(registry, spec, task_id="t1")
    assert refused.error == (
        "quota: task 't1' has used all 3 tool call(s) allowed to agent 'a1'; finish the task without tools"
    )
    assert registry.policy.quota.used("a1", "t1") == {"*": 3, "ping": 3}


async def test_per_tool_task_quota(registry: ToolRegistry) -> None:
    spec = agent(tool_task_quota={"ping": 1})
    assert await denials(registry, spec, 2, task_id="t") == [None, "tool_quota"]
    assert await denials(registry, spec, 2, "other", task_id="t") == [None, None]


# -- concurrency, timeouts, isolation --------------------------------------------------------------

async def test_max_concurrent_makes_calls_wait_for_a_slot() -> None:
    registry = ToolRegistry()
    running: dict[str, int] = {"a1": 0, "a2": 0}
    peak: dict[str, int] = {"a1": 0, "a2": 0}
    changed, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx: ToolContext) -> str:
        running[ctx.agent_id] += 1
        peak[ctx.agent_id] = max(peak[ctx.agent_id], running[ctx.agent_id])
        changed.set()
        await release.wait()
        running[ctx.agent_id] -= 1
        return "done"

    async def until(condition: Callable[[], bool]) -> None:
        while not condition():
            changed.clear()
            await changed.wait()

    registry.register(slow)
    calls = [asyncio.create_task(call(registry, agent("a1", max_concurrent=2), "slow")) for _ in range(6)]
    await until(lambda: running["a1"] == 2)
    # a2 has its own slots: its call starts although a1's four other calls are still queued ahead of it.
    other_agent = asyncio.create_task(call(registry, agent("a2", max_concurrent=1), "slow"))
    await until(lambda: running["a2"] == 1)
    assert running == {"a1": 2, "a2": 1}
    release.set()
    outcomes = await asyncio.gather(*calls, other_agent)
    assert [o.result for o in outcomes] == ["done"] * 7
    assert peak == {"a1": 2, "a2": 1}


async def test_timeout_fails_only_that_call() -> None:
    registry = ToolRegistry()

    async def hang() -> str:
        await asyncio.sleep(30)
        return "never"

    def crash() -> str:
        raise RuntimeError("tool bug")

    registry.register(hang)
    registry.register(crash)
    registry.register(ping)
    spec = agent(timeout=0.2)
    hung, crashed, fine = await asyncio.gather(
        call(registry, spec, "hang"), call(registry, spec, "crash"), call(registry, spec, "ping")
    )
    assert hung.error == "tool 'hang' timed out after 0.2s (tool_policy.timeout); the call was abandoned"
    assert hung.duration_ms < 1000
    assert crashed.error == "RuntimeError: tool bug"
    assert fine.result == "pong" and fine.error is None
    stats = registry.policy.stats("a1")["agents"]["a1"]
    assert (stats["allowed"], stats["timeouts"], stats["errors"], stats["denied"]) == (3, 1, 1, 0)


async def test_a_tool_raising_timeout_error_itself_is_an_error_not_a_policy_timeout() -> None:
    registry = ToolRegistry()

    def slow_dependency() -> str:
        raise TimeoutError("upstream did not answer")

    registry.register(slow_dependency)
    outcome = await call(registry, agent(), "slow_dependency")
    assert outcome.error == "TimeoutError: upstream did not answer"
    assert registry.policy.stats()["totals"]["errors"] == 1


# -- denials: recorded, counted, refunded only when a guard refused -------------------------------

async def test_allow_and_deny_globs_are_counted_as_not_enabled(registry: ToolRegistry) -> None:
    spec = agent(allow=["p*"], deny=["pi*"])
    refused = await call(registry, spec, "ping")
    assert (refused.denied, refused.error) == ("not_enabled", "tool 'ping' is not enabled for agent 'a1'")
    assert registry.schemas_for(spec) == []
    unknown = await call(registry, spec, "nosuch")
    assert unknown.error == "unknown tool 'nosuch'; available: none" and unknown.denied is None


async def test_sandbox_refusals_are_counted_and_consume_the_quota(tmp_path: Path) -> None:
    registry = ToolRegistry()
    register_builtin_tools(registry, Workspace(tmp_path / "ws"))
    spec = agent(task_quota=2)
    first = await call(registry, spec, "read_file", task_id="t", path="../../etc/passwd")
    second = await call(registry, spec, "read_file", task_id="t", path="/etc/passwd")
    third = await call(registry, spec, "list_dir", task_id="t")
    assert [first.denied, second.denied, third.denied] == ["sandbox", "sandbox", "quota"]
    assert registry.policy.stats()["totals"] == {
        "allowed": 2, "denied": 3, "errors": 0, "timeouts": 0, "denied_by_reason": {"quota": 1, "sandbox": 2},
    }


async def test_stats_per_agent_tool_and_reason(registry: ToolRegistry) -> None:
    limited = agent("lim", rate_per_minute=1)
    await denials(registry, limited, 3)
    await denials(registry, agent("free"), 2, "other")
    assert registry.policy.stats() == {
        "totals": {"allowed": 3, "denied": 2, "errors": 0, "timeouts": 0, "denied_by_reason": {"rate_limit": 2}},
        "agents": {
            "free": {
                "allowed": 2, "denied": 0, "errors": 0, "timeouts": 0, "denied_by_reason": {},
                "tools": {"other": {"allowed": 2, "denied": 0, "errors": 0, "timeouts": 0, "denied_by_reason": {}}},
            },
            "lim": {
                "allowed": 1, "denied": 2, "errors": 0, "timeouts": 0, "denied_by_reason": {"rate_limit": 2},
                "tools": {"ping": {"allowed": 1, "denied": 2, "errors": 0, "timeouts": 0,
                                   "denied_by_reason": {"rate_limit": 2}}},
            },
        },
        "pending_approvals": 0,
    }
    assert list(registry.policy.stats("free")["agents"]) == ["free"]


async def test_agent_scoped_tools_are_visible_only_to_their_agent(registry: ToolRegistry) -> None:
    def secret() -> str:
        """Only for alice."""
        return "for alice"

    registry.register(secret, agent_id="alice")
    alice, bob = agent("alice"), agent("bob")
    assert [s.name for s in registry.schemas_for(alice)] == ["other", "ping", "secret"]
    assert [s.name for s in registry.schemas_for(bob)] == ["other", "ping"]
    assert (await call(registry, alice, "secret")).result == "for alice"
    assert (await call(registry, bob, "secret")).error == "unknown tool 'secret'; available: other, ping"
    registry.drop_agent("alice")
    assert registry.get("secret", agent_id="alice") is None


async def test_policy_errors_are_tool_errors() -> None:
    # A refused call never raises out of the registry; the enforcer raises typed errors to it.
    enforcer = ToolPolicyEnforcer()
    spec = agent(timeout=0.05)
    info = ToolCallInfo(spec=spec, ctx=ToolContext(agent_id="a1", conversation_id="c", turn_id="t"),
                        tool="x", arguments="{}")
    with pytest.raises(ToolError, match="timed out after 0.05s"):
        await enforcer.run(info, lambda: asyncio.sleep(1))
