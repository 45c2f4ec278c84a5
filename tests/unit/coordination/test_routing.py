"""Policy routing: ordered rules on content, metadata and context, with fallback chains."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from penguin import PenguinCore, ScriptedModel
from penguin.coordination import Router, RouteRule
from penguin.coordination.routing import PATTERN_SCAN_CHARS
from penguin.errors import AgentNotFound, ValidationFailed
from penguin.models.scripted import last_user_text

RULES: list[dict[str, Any]] = [
    {"name": "billing", "target": "billing", "contains": ["invoice", "refund"]},
    {"name": "outage", "target": "role:oncall", "pattern": r"\b(down|5\d\d)\b", "fallbacks": ["general"]},
    {"name": "vip", "target": "vip", "metadata": {"tier": "gold"}},
    {"name": "eu", "target": "eu-desk", "context": {"region": "eu"}},
]


async def make_agents(core: PenguinCore) -> None:
    core.models.register("scripted:named", ScriptedModel(lambda r: f"{r.agent_id}: {last_user_text(r)}"))
    for agent_id in ("billing", "pager", "vip", "eu-desk", "general"):
        await core.create_agent(agent_id, model="scripted:named")
    await core.assign_role("oncall", ["pager"])
    await core.set_routes(RULES, default=["general"])


async def test_rules_pick_the_agent_in_order(core: PenguinCore) -> None:
    await make_agents(core)
    cases: list[tuple[tuple[str], dict[str, Any], str | None, str]] = [
        (("Where is my REFUND?",), {}, "billing", "billing"),
        (("the API is down",), {}, "outage", "pager"),
        (("hello",), {"metadata": {"tier": "gold"}}, "vip", "vip"),
        (("hello",), {"context": {"region": "eu"}}, "eu", "eu-desk"),
        (("invoice for gold",), {"metadata": {"tier": "gold"}}, "billing", "billing"),
        (("just chatting",), {}, None, "general"),
    ]
    for args, options, rule, agent in cases:
        result = await core.route(*args, **options)
        assert (result.rule, result.answer.agent_id) == (rule, agent), args
        assert result.answer.text == f"{agent}: {args[0]}"


async def test_a_failing_target_falls_back_along_the_rule_chain(core: PenguinCore) -> None:
    await make_agents(core)
    await core.update_agent("pager", model="scripted:error")
    result = await core.route("payments return 503")
    assert result.rule == "outage" and result.chain == ("role:oncall", "general")
    assert (result.answer.agent_id, result.answer.fallback_used) == ("general", True)
    assert result.answer.attempts[0].agent_id == "pager"


async def test_routes_persist_and_need_a_target(tmp_path: Path, database_url: str) -> None:
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        with pytest.raises(AgentNotFound, match="no routing rule"):
            await core.route("anything")
        await core.set_routes(RULES)
    async with PenguinCore(data_dir=tmp_path, database_url=database_url, model="scripted:echo") as core:
        assert core.coordinator.router.to_dict() == Router.from_dict({"rules": RULES}).to_dict()


def test_rules_validate_their_fields() -> None:
    with pytest.raises(ValidationFailed, match=r"^rule 'bad': invalid regular expression '\(': missing \)") as bad:
        RouteRule(name="bad", target="a", pattern="(")
    assert bad.value.field == "pattern"
    with pytest.raises(ValidationFailed, match="target"):
        RouteRule(name="bad", target="not an id")
    with pytest.raises(ValidationFailed, match="unknown rule field"):
        RouteRule.from_dict({"name": "x", "target": "a", "regex": "y"})
    with pytest.raises(ValidationFailed, match="unique"):
        Router([RouteRule(name="x", target="a"), RouteRule(name="x", target="b")])
    assert RouteRule(name="all", target="a").matches("anything", {}, {})


# -- hostile patterns -------------------------------------------------------------------------------

async def test_a_catastrophic_pattern_routes_at_once(core: PenguinCore) -> None:
    await core.create_agent("general", model="scripted:echo")
    await core.create_agent("as", model="scripted:echo")
    await core.set_routes([{"name": "redos", "target": "as", "pattern": "(a+)+$"}], default=["general"])
    started = time.perf_counter()
    result = await core.route("a" * 30 + "b")
    assert time.perf_counter() - started < 1.0  # Python's re: about a minute, with the loop frozen
    assert (result.rule, result.answer.agent_id) == (None, "general")
    assert (await core.route("aaaa")).rule == "redos"


def test_patterns_search_the_first_64_kib_of_a_message() -> None:
    rule = RouteRule(name="tail", target="a", pattern="needle")
    assert rule.matches("x" * (PATTERN_SCAN_CHARS - 6) + "needle", {}, {})
    assert not rule.matches("x" * PATTERN_SCAN_CHARS + "needle", {}, {})


async def test_pattern_matching_runs_off_the_event_loop() -> None:
    threads: list[str] = []

    class Spy(Router):
        def select(self, text: str, metadata: Any = None, context: Any = None) -> tuple[str | None, tuple[str, ...]]:
            threads.append(threading.current_thread().name)
            return super().select(text, metadata, context)

    await Spy([RouteRule(name="plain", target="a", contains=("x",))]).aselect("x")
    await Spy([RouteRule(name="re", target="a", pattern="x")]).aselect("x")
    main = threading.current_thread().name
    assert threads[0] == main and threads[1] != main


def test_stored_rules_that_no_longer_validate_are_dropped_with_an_error(caplog: pytest.LogCaptureFixture) -> None:
    stored = {"rules": [{"name": "old", "target": "a", "pattern": "x(?=y)"}, {"name": "ok", "target": "b"}],
              "default": ["c"]}
    with caplog.at_level(logging.ERROR, logger="penguin.coordination"):
        router = Router.restore(stored)
    assert [r.name for r in router.rules] == ["ok"] and router.default == ("c",)
    assert caplog.messages == [
        "routing rule 'old' was dropped: rule 'old': invalid regular expression 'x(?=y)': invalid perl operator: "
        "(?=. Patterns use RE2 syntax, which has no backreferences or lookaround (see docs/security.md); "
        "set the routes again"
    ]
