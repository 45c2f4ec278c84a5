"""``AgentRegistry``: the persisted, runtime-editable set of agents.

Specs are cached in memory (one small frozen object per agent) and written through to the
``agents`` table, so a new core on the same database restores every agent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from penguin.agents.spec import AgentSpec, check_changes
from penguin.errors import AgentExists, AgentNotFound, Conflict
from penguin.naming import DEFAULT_AGENT_ID, validate_agent_id
from penguin.storage.database import Database
from penguin.storage.schema import agents as agents_table

_INSERT_AGENT = sa.insert(agents_table)

ChangeListener = Callable[[str, AgentSpec], Awaitable[None]]
"""Called with ("created" | "updated" | "removed", spec) after each committed change."""


class AgentRegistry:
    def __init__(
        self,
        db: Database,
        *,
        tenant_id: str,
        validate_model: Callable[[str], str],
        on_change: ChangeListener | None = None,
    ) -> None:
        self._db = db
        self._tenant = tenant_id
        self._validate_model = validate_model
        self._on_change = on_change
        self._specs: dict[str, AgentSpec] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read every agent of this tenant and make sure ``default`` exists."""
        async with self._db.read() as conn:
            rows = await conn.execute(sa.select(agents_table.c.spec).where(agents_table.c.tenant_id == self._tenant))
            for (raw,) in rows:
                spec = AgentSpec.from_dict(orjson.loads(raw))
                self._specs[spec.agent_id] = spec
        if DEFAULT_AGENT_ID not in self._specs:
            await self.create(DEFAULT_AGENT_ID, system_prompt="You are Penguin, a helpful assistant.")

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, agent_id: str) -> AgentSpec:
        spec = self._specs.get(agent_id)
        if spec is None:
            validate_agent_id(agent_id)
            raise AgentNotFound(f"no agent {agent_id!r}; create it first", field="agent_id")
        return spec

    def find(self, agent_id: str) -> AgentSpec | None:
        return self._specs.get(agent_id)

    def list(self, *, role: str | None = None, parent_id: str | None = None) -> list[AgentSpec]:
        specs = sorted(self._specs.values(), key=lambda s: s.agent_id)
        if role is not None:
            specs = [s for s in specs if role in s.roles]
        if parent_id is not None:
            specs = [s for s in specs if s.parent_id == parent_id]
        return specs

    async def create(self, agent_id: str, **fields: Any) -> AgentSpec:
        """Register a new agent.

        Raises:
            InvalidAgentId, ValidationFailed, InvalidModelString: bad fields.
            AgentExists: the id is taken.
        """
        validate_agent_id(agent_id)
        values = check_changes(fields)
        if values.get("model") is not None:
            values["model"] = self._validate_model(values["model"])
        if values.get("parent_id") is not None:
            self.get(values["parent_id"])
        spec = AgentSpec(agent_id=agent_id, tenant_id=self._tenant, **values)
        async with self._lock:
            if agent_id in self._specs:
                raise AgentExists(
                    f"agent {agent_id!r} already exists; update it instead, or create it with exist_ok",
                    field="agent_id",
                )
            now = time.time()
            row = {
                "agent_id": agent_id,
                "tenant_id": self._tenant,
                "spec": orjson.dumps(spec.to_dict()).decode(),
                "created_at": now,
                "updated_at": now,
            }

            def insert(conn: sa.Connection) -> None:
                conn.execute(_INSERT_AGENT, row)

            try:
                await self._db.write(insert, inline=True)
            except asyncio.CancelledError:
                self._specs[agent_id] = spec  # ``write`` raises a cancellation only once committed
                raise
            self._specs[agent_id] = spec
        await self._notify("created", spec)
        return spec

    async def ensure(self, agent_id: str) -> tuple[AgentSpec, bool]:
        """Return the agent, creating it with defaults if missing; the flag says it was created."""
        spec = self._specs.get(agent_id)
        if spec is not None:
            return spec, False
        try:
            return await self.create(agent_id), True
        except AgentExists:
            return self.get(agent_id), False

    async def update(self, agent_id: str, changes: Mapping[str, Any]) -> AgentSpec:
        values = check_changes(changes)
        if values.get("model") is not None:
            values["model"] = self._validate_model(values["model"])
        if values.get("parent_id") is not None:
            if values["parent_id"] == agent_id:
                raise Conflict("an agent cannot be its own parent", field="parent_id")
            self.get(values["parent_id"])
        async with self._lock:
            spec = self.get(agent_id).updated(**values)
            async with self._db.transaction() as conn:
                await conn.execute(
                    sa.update(agents_table)
                    .where(agents_table.c.tenant_id == self._tenant, agents_table.c.agent_id == agent_id)
                    .values(spec=orjson.dumps(spec.to_dict()).decode(), updated_at=spec.updated_at)
                )
            self._specs[agent_id] = spec
        await self._notify("updated", spec)
        return spec

    async def remove(self, agent_id: str) -> AgentSpec:
        if agent_id == DEFAULT_AGENT_ID:
            raise Conflict("the default agent cannot be removed", field="agent_id")
        async with self._lock:
            spec = self.get(agent_id)
            async with self._db.transaction() as conn:
                await conn.execute(
                    sa.delete(agents_table).where(
                        agents_table.c.tenant_id == self._tenant, agents_table.c.agent_id == agent_id
                    )
                )
            del self._specs[agent_id]
        await self._notify("removed", spec)
        return spec

    async def _notify(self, kind: str, spec: AgentSpec) -> None:
        if self._on_change is not None:
            await self._on_change(kind, spec)
