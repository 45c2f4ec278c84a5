"""``UsageLedger``: token usage per agent (and per task), so a sub-agent's cost is its own.

Every completed turn adds its ``ChatResult.usage`` to the ledger under the agent that ran it and,
for task turns, under the task. Agent totals persist in the ``kv`` table (namespace ``usage``)
through the write-behind committer; task totals are kept for recent tasks only (a delegation
result reads them right after the task ends).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from penguin.bus.kv import KVStore
from penguin.models.base import Usage

NAMESPACE = "usage"
_RECENT_TASKS = 10_000


@dataclass(slots=True, kw_only=True)
class AgentUsage:
    """Accumulated usage: tokens as the providers reported them, and turns completed."""

    input_tokens: int = 0
    output_tokens: int = 0
    turns: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.turns += 1

    def copy(self) -> AgentUsage:
        return AgentUsage(input_tokens=self.input_tokens, output_tokens=self.output_tokens, turns=self.turns)

    def to_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
            "turns": self.turns,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentUsage:
        return cls(
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            turns=int(data.get("turns", 0)),
        )


class UsageLedger:
    def __init__(self, kv: KVStore) -> None:
        self._kv = kv
        self._agents: dict[str, AgentUsage] = {}
        self._tasks: OrderedDict[str, AgentUsage] = OrderedDict()

    async def load(self) -> None:
        self._agents = {k: AgentUsage.from_dict(v) for k, v in (await self._kv.load(NAMESPACE)).items()}

    def add(self, agent_id: str, usage: Usage, *, task_id: str | None = None) -> None:
        total = self._agents.get(agent_id)
        if total is None:
            total = self._agents[agent_id] = AgentUsage()
        total.add(usage)
        self._kv.put(NAMESPACE, agent_id, total.to_dict())
        if task_id is not None:
            per_task = self._tasks.get(task_id)
            if per_task is None:
                per_task = self._tasks[task_id] = AgentUsage()
                while len(self._tasks) > _RECENT_TASKS:
                    self._tasks.popitem(last=False)
            per_task.add(usage)

    def for_agent(self, agent_id: str) -> AgentUsage:
        found = self._agents.get(agent_id)
        return found.copy() if found is not None else AgentUsage()

    def for_task(self, task_id: str) -> AgentUsage:
        found = self._tasks.get(task_id)
        return found.copy() if found is not None else AgentUsage()

    def all(self) -> dict[str, AgentUsage]:
        return {k: v.copy() for k, v in sorted(self._agents.items())}
